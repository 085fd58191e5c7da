//! Printer: [`Expr`] → canonical condition text.
//!
//! Canonical form: one line; `AND` / `OR` / `NOT` spelled as words except that
//! a negated group or function call is printed `!(…)` as the portal does;
//! parentheses exactly where the AST nests a junction inside a junction.
//! `parse(print(e)) == e` for every `e` the parser can produce, as long as the
//! printed text stays within the 8 KB limit (words for `&&` and `!` and the
//! pretty form's indentation can make it longer than the source; property-tested).
//!
//! Must never: print a string containing `'` (the language has no escape for
//! it; the parser never produces one).

use std::fmt::Write;

use super::ast::*;

/// The canonical one-line text of an expression.
pub fn print(expr: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, expr);
    out
}

/// A multi-line rendering in the portal's layout (one operand per line,
/// junction words on their own lines, one space of indent per level). It
/// parses back to the same AST.
pub fn print_pretty(expr: &Expr) -> String {
    let mut out = String::new();
    write_pretty(&mut out, expr, 0);
    out
}

fn write_expr(out: &mut String, expr: &Expr) {
    match expr {
        Expr::And(items) => write_junction(out, items, " AND "),
        Expr::Or(items) => write_junction(out, items, " OR "),
        Expr::Not(inner) => match inner.as_ref() {
            Expr::And(_) | Expr::Or(_) | Expr::ActionMatches(_) | Expr::SubOperationMatches(_) => {
                out.push_str("!(");
                write_expr(out, inner);
                out.push(')');
            }
            _ => {
                out.push_str("NOT ");
                write_expr(out, inner);
            }
        },
        Expr::ActionMatches(p) => {
            let _ = write!(out, "ActionMatches{{'{p}'}}");
        }
        Expr::SubOperationMatches(p) => {
            let _ = write!(out, "SubOperationMatches{{'{p}'}}");
        }
        Expr::Exists(a) => {
            let _ = write!(out, "Exists {a}");
        }
        Expr::Compare(c) => {
            write_operand(out, &c.left);
            let _ = write!(out, " {} ", c.operator);
            write_operand(out, &c.right);
        }
    }
}

fn write_junction(out: &mut String, items: &[Expr], word: &str) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(word);
        }
        let grouped = matches!(item, Expr::And(_) | Expr::Or(_));
        if grouped {
            out.push('(');
        }
        write_expr(out, item);
        if grouped {
            out.push(')');
        }
    }
}

fn write_pretty(out: &mut String, expr: &Expr, level: usize) {
    let indent = " ".repeat(level);
    match expr {
        Expr::And(items) | Expr::Or(items) => {
            let word = if matches!(expr, Expr::And(_)) { "AND" } else { "OR" };
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    let _ = writeln!(out, "{indent}{word}");
                }
                if matches!(item, Expr::And(_) | Expr::Or(_)) {
                    let _ = writeln!(out, "{indent}(");
                    write_pretty(out, item, level + 1);
                    let _ = writeln!(out, "{indent})");
                } else {
                    let _ = writeln!(out, "{indent}{}", print(item));
                }
            }
        }
        other => {
            let _ = writeln!(out, "{indent}{}", print(other));
        }
    }
}

fn write_operand(out: &mut String, operand: &Operand) {
    match operand {
        Operand::Attribute(a) => {
            let _ = write!(out, "{a}");
        }
        Operand::Literal(Literal::Single(s)) => write_scalar(out, s),
        Operand::Literal(Literal::Set(values)) => {
            out.push('{');
            for (i, s) in values.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_scalar(out, s);
            }
            out.push('}');
        }
    }
}

fn write_scalar(out: &mut String, scalar: &Scalar) {
    let _ = match scalar {
        Scalar::String(s) => write!(out, "'{s}'"),
        Scalar::Integer(n) => write!(out, "{n}"),
        Scalar::Bool(b) => write!(out, "{b}"),
        Scalar::DateTime { text, .. } | Scalar::Guid { text, .. } | Scalar::Ip { text, .. } => {
            write!(out, "'{text}'")
        }
    };
}
