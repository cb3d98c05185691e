//! Clerk's JWT-template claims language: parsed once into [`Claims`], rendered per token.
//!
//! - A string value may hold shortcodes: `{{user.first_name}}`, `{{user.public_metadata.a.b}}`.
//! - A value that is only a shortcode keeps the JSON type of what it names; a shortcode
//!   mixed with text renders as a string, with null printed as `null`.
//! - `{{a || b || 'literal'}}` yields the first operand that is neither null nor false,
//!   else the last operand. Literals: single-quoted strings, numbers, `true`, `false`.
//! - Unknown or missing values are null. Keys are never interpreted.

mod parse;

use serde_json::{Map, Value};

pub use parse::TemplateError;

/// A parsed claims document.
#[derive(Clone, Debug, PartialEq)]
pub struct Claims(Vec<(String, Node)>);

#[derive(Clone, Debug, PartialEq)]
enum Node {
    /// A value without shortcodes, kept as it is.
    Literal(Value),
    /// A string that is exactly one shortcode: keeps the type of its value.
    Whole(Expr),
    /// Text with shortcodes in it: always a string.
    Text(Vec<Part>),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Expr(Expr),
}

/// `a || b || 'c'`: one or more operands.
#[derive(Clone, Debug, PartialEq)]
struct Expr(Vec<Operand>);

#[derive(Clone, Debug, PartialEq)]
enum Operand {
    /// A dotted path such as `user.public_metadata.plan`.
    Path(Vec<String>),
    Literal(Value),
}

/// What shortcodes can name: `user`, `session`, `org`, `org_membership` objects.
pub trait Context {
    /// The value at `path` (its first segment names the object); `None` when unknown.
    fn lookup(&self, path: &[String]) -> Option<Value>;
}

impl Claims {
    /// Parses a claims document; errors say where (a JSON path) and why.
    pub fn parse(claims: &Map<String, Value>) -> Result<Self, TemplateError> {
        let mut out = Vec::with_capacity(claims.len());
        for (key, value) in claims {
            out.push((key.clone(), parse::node(value, key)?));
        }
        Ok(Claims(out))
    }

    pub fn render(&self, ctx: &dyn Context) -> Map<String, Value> {
        self.render_within(ctx, usize::MAX).unwrap_or_default()
    }

    /// Renders, giving up as soon as the output passes about `max_bytes` of JSON, so a
    /// template that repeats large values costs at most that much memory, never more.
    pub fn render_within(
        &self,
        ctx: &dyn Context,
        max_bytes: usize,
    ) -> Result<Map<String, Value>, TooLarge> {
        let mut budget = Budget(max_bytes);
        let mut out = Map::new();
        for (k, n) in &self.0 {
            budget.spend(k.len() + 4)?;
            out.insert(k.clone(), render(n, ctx, &mut budget)?);
        }
        Ok(out)
    }
}

/// A rendering went past its size budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLarge;

/// Bytes of JSON left to render (an estimate that never undercounts by much: separators
/// and string escapes aside, it charges each value its JSON length).
struct Budget(usize);

impl Budget {
    fn spend(&mut self, bytes: usize) -> Result<(), TooLarge> {
        self.0 = self.0.checked_sub(bytes).ok_or(TooLarge)?;
        Ok(())
    }
}

fn render(node: &Node, ctx: &dyn Context, budget: &mut Budget) -> Result<Value, TooLarge> {
    Ok(match node {
        Node::Literal(v) => {
            budget.spend(crate::limits::json_len(v))?;
            v.clone()
        }
        Node::Whole(expr) => {
            let v = evaluate(expr, ctx);
            budget.spend(crate::limits::json_len(&v))?;
            v
        }
        Node::Text(parts) => {
            let mut out = String::new();
            for part in parts {
                let before = out.len();
                match part {
                    Part::Text(t) => out.push_str(t),
                    Part::Expr(e) => match evaluate(e, ctx) {
                        Value::String(s) => out.push_str(&s),
                        other => out.push_str(&other.to_string()),
                    },
                }
                budget.spend(out.len() - before)?;
            }
            budget.spend(2)?;
            Value::String(out)
        }
        Node::Array(items) => {
            budget.spend(2 + items.len())?;
            Value::Array(
                items
                    .iter()
                    .map(|n| render(n, ctx, budget))
                    .collect::<Result<_, _>>()?,
            )
        }
        Node::Object(map) => {
            budget.spend(2)?;
            let mut out = Map::new();
            for (k, n) in map {
                budget.spend(k.len() + 4)?;
                out.insert(k.clone(), render(n, ctx, budget)?);
            }
            Value::Object(out)
        }
    })
}

fn evaluate(expr: &Expr, ctx: &dyn Context) -> Value {
    let mut last = Value::Null;
    for operand in &expr.0 {
        last = match operand {
            Operand::Literal(v) => v.clone(),
            Operand::Path(path) => ctx.lookup(path).unwrap_or(Value::Null),
        };
        if !matches!(last, Value::Null | Value::Bool(false)) {
            return last;
        }
    }
    last
}

/// Follows `rest` into a JSON value (metadata paths); missing keys are `None`.
pub fn dig(value: &Value, rest: &[String]) -> Option<Value> {
    let mut current = value;
    for key in rest {
        current = current.as_object()?.get(key)?;
    }
    Some(current.clone())
}

#[cfg(test)]
mod tests;
