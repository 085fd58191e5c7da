//! Owns the way back from rewritten text to the text the user wrote: rendering templates
//! and expanding aliases change the file before YAML sees it, and an [`OffsetMap`] records
//! which character of the output came from which character of the input, so that errors
//! point into the user's file. It must never change text itself.

use std::ops::Range;

use crate::error::Position;

/// Character offsets of an output text, mapped to character offsets of its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OffsetMap {
    /// `(output start, input start, copied)`, ordered by output start. A copied segment maps
    /// character by character; a substituted one maps every output character to the start of
    /// what it replaced.
    segments: Vec<(usize, usize, bool)>,
}

impl OffsetMap {
    /// The map of a text that was not changed.
    pub fn identity() -> OffsetMap {
        OffsetMap { segments: vec![(0, 0, true)] }
    }

    /// The output ranges that replaced input (rather than copied it), in order.
    pub fn substituted(&self) -> Vec<Range<usize>> {
        self.segments.windows(2).filter(|w| !w[0].2 && w[0].0 < w[1].0).map(|w| w[0].0..w[1].0).collect()
    }

    /// The input offset an output offset came from.
    pub fn map(&self, out: usize) -> usize {
        let i = self.segments.partition_point(|&(start, _, _)| start <= out);
        match i.checked_sub(1).map(|i| self.segments[i]) {
            Some((start, src, true)) => src + (out - start),
            Some((_, src, false)) => src,
            None => out,
        }
    }
}

/// Builds an [`OffsetMap`] while the output is written, in order.
#[derive(Debug, Default)]
pub(crate) struct MapBuilder {
    out: String,
    out_chars: usize,
    segments: Vec<(usize, usize, bool)>,
}

impl MapBuilder {
    /// Appends `text`, copied from the input at character offset `src`.
    pub fn copy(&mut self, text: &str, src: usize) {
        self.push(text, src, true);
    }

    /// Appends `text`, which replaces the input starting at character offset `src`.
    pub fn substitute(&mut self, text: &str, src: usize) {
        self.push(text, src, false);
    }

    fn push(&mut self, text: &str, src: usize, copied: bool) {
        if text.is_empty() {
            return;
        }
        self.segments.push((self.out_chars, src, copied));
        self.out.push_str(text);
        self.out_chars += text.chars().count();
    }

    /// The output and its map; `input_chars` (the input's length) is where the end maps.
    pub fn finish(mut self, input_chars: usize) -> (String, OffsetMap) {
        self.segments.push((self.out_chars, input_chars, true));
        (self.out, OffsetMap { segments: self.segments })
    }
}

/// Line and column (both from 1, the column in characters) of a character offset of `text`.
pub(crate) fn position(text: &str, offset: usize) -> Position {
    let mut line = 1;
    let mut column = 1;
    for c in text.chars().take(offset) {
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    Position { line, column }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copied_and_substituted_segments_map_back() {
        // input: "a {{x}} b" (x = "LONG"); output: "a LONG b"
        let mut b = MapBuilder::default();
        b.copy("a ", 0);
        b.substitute("LONG", 2);
        b.copy(" b", 7);
        let (out, map) = b.finish(9);
        assert_eq!(out, "a LONG b");
        assert_eq!(map.map(0), 0);
        assert_eq!(map.map(1), 1);
        assert_eq!(map.map(2), 2);
        assert_eq!(map.map(5), 2);
        assert_eq!(map.map(6), 7);
        assert_eq!(map.map(7), 8);
        assert_eq!(map.map(8), 9);
        assert_eq!(map.substituted(), vec![2..6]);
        assert_eq!(OffsetMap::identity().map(42), 42);
    }

    #[test]
    fn positions_count_lines_and_characters() {
        let text = "ab\nçd\nef";
        assert_eq!(position(text, 0), Position { line: 1, column: 1 });
        assert_eq!(position(text, 2), Position { line: 1, column: 3 });
        assert_eq!(position(text, 3), Position { line: 2, column: 1 });
        assert_eq!(position(text, 4), Position { line: 2, column: 2 });
        assert_eq!(position(text, 7), Position { line: 3, column: 2 });
    }
}
