//! Evaluation of a condition against one JSON record (semantics in the
//! module docs of `rules`).

use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::{Expr, FieldRef, Literal, Op};

impl Expr {
    /// Whether `record` satisfies the condition.
    pub fn eval(&self, record: &Value) -> bool {
        match self {
            Expr::Compare { field, op, value } => match lookup(record, field) {
                Some(found) => compare(found, *op, value),
                None => false,
            },
            Expr::Not(inner) => !inner.eval(record),
            Expr::And(l, r) => l.eval(record) && r.eval(record),
            Expr::Or(l, r) => l.eval(record) || r.eval(record),
        }
    }
}

/// The value a field names: its own key first (`"cpu.pct"` in a flat
/// record), then the path through nested objects. `null` counts as missing.
fn lookup<'a>(record: &'a Value, field: &FieldRef) -> Option<&'a Value> {
    let obj = record.as_object()?;
    let found = match obj.get(&field.name) {
        Some(v) => v,
        None if field.parts.len() > 1 => {
            let mut at = record;
            for part in &field.parts {
                at = at.as_object()?.get(part)?;
            }
            at
        }
        None => return None,
    };
    (!found.is_null()).then_some(found)
}

fn compare_numbers(n: &Number, lit: &Literal) -> Option<Ordering> {
    match lit {
        Literal::Int(l) => match (n.as_i64(), n.as_u64()) {
            (Some(v), _) => Some(v.cmp(l)),
            (None, Some(v)) => Some(i128::from(v).cmp(&i128::from(*l))),
            _ => n.as_f64()?.partial_cmp(&(*l as f64)),
        },
        Literal::Float(l) => n.as_f64()?.partial_cmp(l),
        _ => None,
    }
}

fn same(found: &Value, lit: &Literal) -> bool {
    match (found, lit) {
        (Value::Number(n), Literal::Int(_) | Literal::Float(_)) => {
            compare_numbers(n, lit) == Some(Ordering::Equal)
        }
        (Value::String(s), Literal::Str(l)) => s == l,
        (Value::Bool(b), Literal::Bool(l)) => b == l,
        _ => false,
    }
}

fn ordering(found: &Value, lit: &Literal) -> Option<Ordering> {
    match (found, lit) {
        (Value::Number(n), _) => compare_numbers(n, lit),
        (Value::String(s), Literal::Str(l)) => Some(s.as_str().cmp(l.as_str())),
        _ => None,
    }
}

fn compare(found: &Value, op: Op, lit: &Literal) -> bool {
    let ord = |accept: fn(Ordering) -> bool| ordering(found, lit).is_some_and(accept);
    match op {
        Op::Eq => same(found, lit),
        Op::Ne => !same(found, lit),
        Op::Gt => ord(Ordering::is_gt),
        Op::Ge => ord(Ordering::is_ge),
        Op::Lt => ord(Ordering::is_lt),
        Op::Le => ord(Ordering::is_le),
        Op::Contains => match (found, lit) {
            (Value::String(s), Literal::Str(l)) => s.contains(l.as_str()),
            (Value::Array(items), lit) => items.iter().any(|v| same(v, lit)),
            _ => false,
        },
    }
}
