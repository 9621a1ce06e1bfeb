//! Alert rules: conditions such as
//! `temperature > 80 AND (status == "error" OR humidity < 30)` parsed into
//! an `Expr`, evaluated against JSON records, and rate-limited per rule by
//! a cooldown whose clock is passed in (so tests never sleep).
//!
//! Semantics: numbers compare numerically (integers exactly), strings
//! lexically by bytes, booleans only with `==`/`!=`. A missing field, or
//! one holding `null`, makes a comparison false. Values of different types
//! are never equal, so `!=` between them is true and every ordering false.
//! `contains` tests a substring of a string field or an element of an
//! array field. A dotted name (`cpu.pct`) is first looked up as a key of
//! its own, as schema stores write them, then as a path into nested
//! objects.

mod eval;
mod parse;

use std::fmt;
use std::time::{Duration, Instant};

pub use parse::{MAX_CONDITION_LEN, MAX_DEPTH, parse};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
    Contains,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Contains => "contains",
        })
    }
}

/// The value side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Int(i64),
    /// Always finite.
    Float(f64),
    Str(String),
    Bool(bool),
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Int(v) => write!(f, "{v}"),
            // Debug keeps a '.' or an exponent, so it reads back as a float.
            Literal::Float(v) => write!(f, "{v:?}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Str(s) => {
                f.write_str("\"")?;
                for c in s.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        '\n' => f.write_str("\\n")?,
                        '\t' => f.write_str("\\t")?,
                        '\r' => f.write_str("\\r")?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("\"")
            }
        }
    }
}

/// A field name with its dotted path split once at parse time.
#[derive(Debug, Clone)]
pub struct FieldRef {
    pub name: String,
    parts: Vec<String>,
}

impl FieldRef {
    pub fn new(name: &str) -> FieldRef {
        FieldRef {
            name: name.to_string(),
            parts: name.split('.').map(str::to_string).collect(),
        }
    }
}

impl PartialEq for FieldRef {
    fn eq(&self, other: &FieldRef) -> bool {
        self.name == other.name
    }
}

/// A parsed condition. `And`/`Or` are binary and left-associative, as
/// parsed; printing keeps that shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Compare {
        field: FieldRef,
        op: Op,
        value: Literal,
    },
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

impl Expr {
    /// Parses a condition; see the module docs for the grammar.
    pub fn parse(input: &str) -> Result<Expr, RuleError> {
        parse::parse(input)
    }

    fn write_operand(&self, f: &mut fmt::Formatter<'_>, parens: bool) -> fmt::Result {
        if parens {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

/// Prints the condition with only the parentheses its shape needs, so
/// that parsing the output gives back the same tree.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Compare { field, op, value } => write!(f, "{} {op} {value}", field.name),
            Expr::Not(inner) => {
                f.write_str("NOT ")?;
                inner.write_operand(f, matches!(**inner, Expr::And(..) | Expr::Or(..)))
            }
            Expr::And(l, r) => {
                l.write_operand(f, matches!(**l, Expr::Or(..)))?;
                f.write_str(" AND ")?;
                r.write_operand(f, matches!(**r, Expr::And(..) | Expr::Or(..)))
            }
            Expr::Or(l, r) => {
                l.write_operand(f, false)?;
                f.write_str(" OR ")?;
                r.write_operand(f, matches!(**r, Expr::Or(..)))
            }
        }
    }
}

/// A condition that does not parse, with the 1-based character position
/// of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at position {position}")]
pub struct RuleError {
    pub position: usize,
    pub message: String,
}

/// Rule definitions that are not conditions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleDefError {
    #[error("rule name must be 1 to 128 characters")]
    BadName,
    #[error("rule '{name}': condition {source}")]
    Condition { name: String, source: RuleError },
}

/// A named condition with an optional cooldown between firings.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    /// The condition as the user wrote it, echoed in alerts.
    pub condition: String,
    pub expr: Expr,
    /// After a firing, matches within this long are suppressed. `None`:
    /// every match fires.
    pub cooldown: Option<Duration>,
    last_fired: Option<Instant>,
}

impl Rule {
    pub fn new(
        name: &str,
        condition: &str,
        cooldown: Option<Duration>,
    ) -> Result<Rule, RuleDefError> {
        if name.is_empty() || name.chars().count() > 128 {
            return Err(RuleDefError::BadName);
        }
        let expr = Expr::parse(condition).map_err(|source| RuleDefError::Condition {
            name: name.to_string(),
            source,
        })?;
        Ok(Rule {
            name: name.to_string(),
            condition: condition.to_string(),
            expr,
            cooldown,
            last_fired: None,
        })
    }

    /// Whether `record` matches (the cooldown is not consulted).
    pub fn matches(&self, record: &serde_json::Value) -> bool {
        self.expr.eval(record)
    }

    /// Evaluates `record` at time `now`: true when it matches and the rule
    /// is not cooling down, in which case the cooldown restarts at `now`.
    pub fn fire(&mut self, record: &serde_json::Value, now: Instant) -> bool {
        if let (Some(cooldown), Some(last)) = (self.cooldown, self.last_fired)
            && now.saturating_duration_since(last) < cooldown
        {
            return false;
        }
        if !self.matches(record) {
            return false;
        }
        self.last_fired = Some(now);
        true
    }
}

#[cfg(test)]
mod tests;
