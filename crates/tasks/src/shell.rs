//! Owns splitting a step's string (`build:`, `cmd:`) into words the way a POSIX shell would
//! quote them: whitespace separates, `'…'` is literal, `"…"` allows `\"`, `\\`, `\$` and
//! `` \` ``, and a backslash outside quotes escapes the next character. It must never expand
//! anything (`$HOME`, `*`, `~` stay as written).

/// The words of `s`, or `None` for an unterminated quote.
pub fn split(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => word.push(c),
                            '\n' => {}
                            c => {
                                word.push('\\');
                                word.push(c);
                            }
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => word.push(c),
                    None => word.push('\\'),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    fn words(s: &str) -> Vec<String> {
        split(s).unwrap()
    }

    #[test]
    fn whitespace_and_quotes() {
        assert_eq!(words("  a  b\tc\n"), ["a", "b", "c"]);
        assert_eq!(words(r#"echo "hello world" 'it''s' x"#), ["echo", "hello world", "its", "x"]);
        assert_eq!(words(r#"sh -c 'echo "$HOME"'"#), ["sh", "-c", r#"echo "$HOME""#]);
        assert_eq!(words(r#""a\"b\\c\d" e\ f"#), [r#"a"b\c\d"#, "e f"]);
        assert_eq!(words(r#"'' "" x"#), ["", "", "x"]);
        assert!(words("").is_empty());
    }

    #[test]
    fn no_expansion() {
        assert_eq!(words("echo $HOME * ~"), ["echo", "$HOME", "*", "~"]);
    }

    #[test]
    fn unterminated_quotes() {
        assert_eq!(split("echo 'oops"), None);
        assert_eq!(split("echo \"oops"), None);
        assert_eq!(split("echo \"a\\"), None);
    }
}
