//! Condition parser: a hand-written lexer and recursive descent, so every
//! error can say at which character it happened.
//!
//! ```text
//! or      := and ("OR" and)*
//! and     := unary ("AND" unary)*
//! unary   := "NOT" unary | "(" or ")" | field op value
//! op      := > >= < <= == != contains
//! value   := number | "string" | true | false
//! ```
//! Keywords are case-insensitive. Input length and nesting depth are
//! bounded so no input can exhaust the stack.

use super::{Expr, FieldRef, Literal, Op, RuleError};

/// Longest condition accepted, in characters.
pub const MAX_CONDITION_LEN: usize = 4096;
/// Deepest nesting of parentheses and NOTs.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Op(Op),
    Word(String),
    Number(Literal),
    Str(String),
}

/// A token and the 1-based character position where it starts.
type Spanned = (Tok, usize);

fn err<T>(position: usize, message: impl Into<String>) -> Result<T, RuleError> {
    Err(RuleError {
        position,
        message: message.into(),
    })
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn lex(input: &str) -> Result<Vec<Spanned>, RuleError> {
    let chars: Vec<char> = input.chars().collect();
    if chars.len() > MAX_CONDITION_LEN {
        return err(
            MAX_CONDITION_LEN + 1,
            format!("condition is longer than {MAX_CONDITION_LEN} characters"),
        );
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        let next = chars.get(i + 1).copied();
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((Tok::LParen, pos));
                i += 1;
            }
            ')' => {
                out.push((Tok::RParen, pos));
                i += 1;
            }
            '>' | '<' | '=' | '!' => {
                let (op, len) = match (c, next) {
                    ('>', Some('=')) => (Op::Ge, 2),
                    ('<', Some('=')) => (Op::Le, 2),
                    ('=', Some('=')) => (Op::Eq, 2),
                    ('!', Some('=')) => (Op::Ne, 2),
                    ('>', _) => (Op::Gt, 1),
                    ('<', _) => (Op::Lt, 1),
                    ('=', _) => return err(pos, "'=' is not an operator: use '==' to compare"),
                    _ => return err(pos, "'!' is not an operator: use '!=' or NOT"),
                };
                out.push((Tok::Op(op), pos));
                i += len;
            }
            '"' => {
                let (s, end) = lex_string(&chars, i)?;
                out.push((Tok::Str(s), pos));
                i = end;
            }
            c if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let (lit, end) = lex_number(&chars, i)?;
                out.push((Tok::Number(lit), pos));
                i = end;
            }
            c if is_word_start(c) => {
                let end = (i..chars.len())
                    .find(|&j| !is_word_char(chars[j]))
                    .unwrap_or(chars.len());
                out.push((Tok::Word(chars[i..end].iter().collect()), pos));
                i = end;
            }
            other => return err(pos, format!("unexpected character '{other}'")),
        }
    }
    Ok(out)
}

/// Reads the string starting at the quote `chars[start]`; returns its
/// value and the index after the closing quote.
fn lex_string(chars: &[char], start: usize) -> Result<(String, usize), RuleError> {
    let mut s = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return Ok((s, i + 1)),
            '\\' => {
                let escaped = match chars.get(i + 1) {
                    Some('"') => '"',
                    Some('\\') => '\\',
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some('r') => '\r',
                    Some(other) => {
                        return err(
                            i + 1,
                            format!(
                                "unknown escape '\\{other}' in string (use \\\" \\\\ \\n \\t or \\r)"
                            ),
                        );
                    }
                    None => break,
                };
                s.push(escaped);
                i += 2;
            }
            c => {
                s.push(c);
                i += 1;
            }
        }
    }
    err(start + 1, "string is not closed: missing '\"'")
}

fn lex_number(chars: &[char], start: usize) -> Result<(Literal, usize), RuleError> {
    let mut i = start;
    if chars[i] == '-' {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let from = *i;
        while *i < chars.len() && chars[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > from
    };
    digits(&mut i);
    let mut float = false;
    if chars.get(i) == Some(&'.') {
        float = true;
        i += 1;
        if !digits(&mut i) {
            return err(i + 1, "expected digits after the decimal point");
        }
    }
    if matches!(chars.get(i), Some('e' | 'E')) {
        float = true;
        i += 1;
        if matches!(chars.get(i), Some('+' | '-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return err(i + 1, "expected digits in the exponent");
        }
    }
    if chars.get(i).is_some_and(|&c| is_word_char(c) && c != '-') {
        return err(i + 1, format!("unexpected '{}' after a number", chars[i]));
    }
    let text: String = chars[start..i].iter().collect();
    let lit = if float {
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Literal::Float(v),
            _ => return err(start + 1, format!("number {text} is out of range")),
        }
    } else {
        match text.parse::<i64>() {
            Ok(v) => Literal::Int(v),
            Err(_) => {
                return err(
                    start + 1,
                    format!(
                        "integer {text} is out of range (use a decimal point for large values)"
                    ),
                );
            }
        }
    };
    Ok((lit, i))
}

struct Parser {
    toks: Vec<Spanned>,
    at: usize,
    /// Position just past the input, for "unexpected end" errors.
    end: usize,
    depth: usize,
}

fn keyword(tok: Option<&Spanned>, word: &str) -> bool {
    matches!(tok, Some((Tok::Word(w), _)) if w.eq_ignore_ascii_case(word))
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Op(op) => format!("'{op}'"),
        Tok::Word(w) => format!("'{w}'"),
        Tok::Number(n) => format!("the number {n}"),
        Tok::Str(_) => "a string".into(),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Spanned> {
        self.toks.get(self.at)
    }

    fn position(&self) -> usize {
        self.peek().map_or(self.end, |(_, p)| *p)
    }

    fn or(&mut self) -> Result<Expr, RuleError> {
        let mut left = self.and()?;
        while keyword(self.peek(), "OR") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, RuleError> {
        let mut left = self.unary()?;
        while keyword(self.peek(), "AND") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn nest(&mut self) -> Result<(), RuleError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(
                self.position(),
                format!("condition nests deeper than {MAX_DEPTH} levels"),
            );
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Expr, RuleError> {
        if keyword(self.peek(), "NOT") {
            self.nest()?;
            self.at += 1;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        if let Some((Tok::LParen, open)) = self.peek() {
            let open = *open;
            self.nest()?;
            self.at += 1;
            let inner = self.or()?;
            match self.peek() {
                Some((Tok::RParen, _)) => self.at += 1,
                Some((tok, p)) => {
                    return err(
                        *p,
                        format!("expected ')' or AND/OR, found {}", describe(tok)),
                    );
                }
                None => return err(open, "'(' is never closed"),
            }
            self.depth -= 1;
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, RuleError> {
        let field = match self.peek().cloned() {
            Some((Tok::Word(w), p)) => {
                if ["AND", "OR"].iter().any(|k| w.eq_ignore_ascii_case(k)) {
                    return err(p, format!("expected a field name, found '{w}'"));
                }
                if w.split('.').any(str::is_empty) {
                    return err(
                        p,
                        format!("field name '{w}' has an empty part between dots"),
                    );
                }
                self.at += 1;
                FieldRef::new(&w)
            }
            Some((tok, p)) => {
                return err(
                    p,
                    format!("expected a field name, found {}", describe(&tok)),
                );
            }
            None => {
                return err(
                    self.end,
                    "expected a field name, found the end of the condition",
                );
            }
        };
        let op = match self.peek().cloned() {
            Some((Tok::Op(op), _)) => op,
            Some((Tok::Word(w), _)) if w.eq_ignore_ascii_case("contains") => Op::Contains,
            Some((tok, p)) => {
                return err(
                    p,
                    format!(
                        "expected an operator (> >= < <= == != contains) after '{}', found {}",
                        field.name,
                        describe(&tok)
                    ),
                );
            }
            None => {
                return err(
                    self.end,
                    format!("expected an operator after '{}', found the end", field.name),
                );
            }
        };
        self.at += 1;
        let value = match self.peek().cloned() {
            Some((Tok::Number(n), _)) => n,
            Some((Tok::Str(s), _)) => Literal::Str(s),
            Some((Tok::Word(w), _)) if w == "true" => Literal::Bool(true),
            Some((Tok::Word(w), _)) if w == "false" => Literal::Bool(false),
            Some((tok, p)) => {
                return err(
                    p,
                    format!(
                        "expected a value (number, \"string\", true or false), found {}",
                        describe(&tok)
                    ),
                );
            }
            None => return err(self.end, "expected a value, found the end of the condition"),
        };
        self.at += 1;
        Ok(Expr::Compare { field, op, value })
    }
}

/// Parses a condition into its syntax tree.
pub fn parse(input: &str) -> Result<Expr, RuleError> {
    let toks = lex(input)?;
    let end = input.chars().count() + 1;
    if toks.is_empty() {
        return err(1, "condition is empty");
    }
    let mut p = Parser {
        toks,
        at: 0,
        end,
        depth: 0,
    };
    let expr = p.or()?;
    if let Some((tok, pos)) = p.peek() {
        return err(
            *pos,
            format!("expected AND, OR or the end, found {}", describe(tok)),
        );
    }
    Ok(expr)
}
