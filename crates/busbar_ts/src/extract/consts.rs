//! Constant expressions in configuration values, evaluated as Encore's parser evaluates
//! integers (`4 * 2`, `2 * 10`, `-1`: `+ - * / %` and unary `+`/`-`), and beyond it, so that no
//! valid app is refused: parentheses, `**`, string concatenation, template literals of
//! constants, and module-level `const` bindings of such expressions declared before the use
//! (`const RETRIES = 5; ... maxRetries: RETRIES * 2`). Anything else (a call, a `let`, an
//! import) is not a constant.

use swc_ecma_ast as ast;

use super::{Extractor, unwrap};

/// The value of a constant expression. A string is an atom: a literal's value is shared with
/// the syntax tree, not copied (a file can hold a string constant of megabytes).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Const {
    Number(f64),
    String(swc_atoms::Atom),
    Bool(bool),
}

/// How deep a constant expression may nest (the binding it names counts as one level).
const MAX_DEPTH: usize = 64;

impl Extractor {
    /// The value of `e`, when it is a constant expression.
    pub(super) fn constant(&self, e: &ast::Expr) -> Option<Const> {
        self.constant_at(e, 0)
    }

    fn constant_at(&self, e: &ast::Expr, depth: usize) -> Option<Const> {
        if depth > MAX_DEPTH {
            return None;
        }
        match unwrap(e) {
            ast::Expr::Lit(ast::Lit::Num(n)) => Some(Const::Number(n.value)),
            ast::Expr::Lit(ast::Lit::Str(s)) => {
                Some(Const::String(s.value.to_atom_lossy().into_owned()))
            }
            ast::Expr::Lit(ast::Lit::Bool(b)) => Some(Const::Bool(b.value)),
            ast::Expr::Ident(id) => self.consts.get(&id.sym).cloned(),
            ast::Expr::Tpl(t) => {
                let mut out = String::new();
                for (i, q) in t.quasis.iter().enumerate() {
                    let cooked = q.cooked.as_ref()?;
                    out.push_str(&cooked.to_string_lossy());
                    if let Some(e) = t.exprs.get(i) {
                        out.push_str(&text_of(&self.constant_at(e, depth + 1)?));
                    }
                }
                Some(Const::String(out.into()))
            }
            ast::Expr::Unary(u) => match (u.op, self.constant_at(&u.arg, depth + 1)?) {
                (ast::UnaryOp::Minus, Const::Number(n)) => Some(Const::Number(-n)),
                (ast::UnaryOp::Plus, Const::Number(n)) => Some(Const::Number(n)),
                _ => None,
            },
            ast::Expr::Bin(b) => {
                let left = self.constant_at(&b.left, depth + 1)?;
                let right = self.constant_at(&b.right, depth + 1)?;
                binary(b.op, left, right)
            }
            _ => None,
        }
    }
}

fn binary(op: ast::BinaryOp, left: Const, right: Const) -> Option<Const> {
    use ast::BinaryOp as B;
    match (op, left, right) {
        (B::Add, Const::Number(a), Const::Number(b)) => Some(Const::Number(a + b)),
        (B::Add, a @ Const::String(_), b) | (B::Add, a, b @ Const::String(_)) => {
            Some(Const::String(format!("{}{}", text_of(&a), text_of(&b)).into()))
        }
        (B::Sub, Const::Number(a), Const::Number(b)) => Some(Const::Number(a - b)),
        (B::Mul, Const::Number(a), Const::Number(b)) => Some(Const::Number(a * b)),
        (B::Div, Const::Number(a), Const::Number(b)) if b != 0.0 => Some(Const::Number(a / b)),
        (B::Mod, Const::Number(a), Const::Number(b)) if b != 0.0 => Some(Const::Number(a % b)),
        (B::Exp, Const::Number(a), Const::Number(b)) => Some(Const::Number(a.powf(b))),
        _ => None,
    }
}

/// A constant as JavaScript writes it into a string.
fn text_of(c: &Const) -> String {
    match c {
        Const::Number(n) => super::types::number_text(*n),
        Const::String(s) => s.to_string(),
        Const::Bool(b) => b.to_string(),
    }
}
