//! The part of wsadmin's Jython the simulator understands: statements separated by `;` or
//! new lines, each `name = expression`, `print expression` or an expression; expressions are
//! string and number literals, lists, names and chains of calls (`AdminControl.invoke(a, 'b',
//! 'c')`, `stats.getStats('m').getStatistic(6).getCurrent()`). IBM documents its wsadmin
//! examples in exactly these forms; anything else is refused as a syntax error, as wsadmin's
//! own parser would refuse a typo.

use anyhow::{bail, Result};

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Str(String),
    Num(i64),
    List(Vec<Expr>),
    /// A name: a variable, or a scripting object (`AdminControl`), or a dotted Java class.
    Name(String),
    /// `receiver.method(args)`; a receiver of `None` is a plain function call `f(args)`.
    Call {
        receiver: Option<Box<Expr>>,
        method: String,
        args: Vec<Expr>,
    },
}

/// A statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    Assign(String, Expr),
    Print(Expr),
    Eval(Expr),
}

/// Parse a script.
pub fn parse(text: &str) -> Result<Vec<Stmt>> {
    let mut p = Parser {
        s: text.chars().collect(),
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        p.skip_separators();
        if p.done() {
            return Ok(out);
        }
        out.push(p.statement()?);
        p.skip_blanks();
        if !p.done() && !matches!(p.peek(), Some(';' | '\n' | '\r')) {
            bail!("SyntaxError: unexpected `{}`", p.rest());
        }
    }
}

struct Parser {
    s: Vec<char>,
    i: usize,
}

impl Parser {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }
    fn rest(&self) -> String {
        self.s[self.i..].iter().take(40).collect()
    }
    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.i += 1;
        }
    }
    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | ';' | '\n' | '\r')) {
            self.i += 1;
        }
        if self.peek() == Some('#') {
            while !matches!(self.peek(), None | Some('\n')) {
                self.i += 1;
            }
            self.skip_separators();
        }
    }
    fn ident(&mut self) -> Option<String> {
        self.skip_blanks();
        let start = self.i;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '_') {
            self.i += 1;
        }
        (self.i > start).then(|| self.s[start..self.i].iter().collect())
    }

    fn statement(&mut self) -> Result<Stmt> {
        let start = self.i;
        if let Some(word) = self.ident() {
            if word == "print" {
                return Ok(Stmt::Print(self.expr()?));
            }
            self.skip_blanks();
            if self.peek() == Some('=') && self.s.get(self.i + 1) != Some(&'=') {
                self.i += 1;
                return Ok(Stmt::Assign(word, self.expr()?));
            }
        }
        self.i = start;
        Ok(Stmt::Eval(self.expr()?))
    }

    fn expr(&mut self) -> Result<Expr> {
        let mut e = self.primary()?;
        loop {
            self.skip_blanks();
            if self.peek() != Some('.') {
                return Ok(e);
            }
            self.i += 1;
            let Some(name) = self.ident() else {
                bail!("SyntaxError: a name must follow `.` at `{}`", self.rest());
            };
            self.skip_blanks();
            if self.peek() == Some('(') {
                let args = self.args(')')?;
                e = Expr::Call {
                    receiver: Some(Box::new(e)),
                    method: name,
                    args,
                };
            } else if let Expr::Name(n) = e {
                e = Expr::Name(format!("{n}.{name}"));
            } else {
                bail!("SyntaxError: attribute `{name}` of a value is not supported");
            }
        }
    }

    fn primary(&mut self) -> Result<Expr> {
        self.skip_blanks();
        match self.peek() {
            Some(q @ ('\'' | '"')) => {
                self.i += 1;
                let mut out = String::new();
                loop {
                    match self.peek() {
                        None => bail!("SyntaxError: EOL while scanning string literal"),
                        Some(c) if c == q => {
                            self.i += 1;
                            return Ok(Expr::Str(out));
                        }
                        Some('\\') => {
                            self.i += 1;
                            if let Some(c) = self.peek() {
                                out.push(c);
                                self.i += 1;
                            }
                        }
                        Some(c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
            }
            Some('[') => Ok(Expr::List(self.args(']')?)),
            Some(c) if c.is_ascii_digit() || c == '-' => {
                let start = self.i;
                self.i += 1;
                while matches!(self.peek(), Some(c) if c.is_ascii_digit()) {
                    self.i += 1;
                }
                let text: String = self.s[start..self.i].iter().collect();
                Ok(Expr::Num(text.parse()?))
            }
            _ => {
                let Some(name) = self.ident() else {
                    bail!("SyntaxError: invalid syntax at `{}`", self.rest());
                };
                self.skip_blanks();
                if self.peek() == Some('(') {
                    let args = self.args(')')?;
                    return Ok(Expr::Call {
                        receiver: None,
                        method: name,
                        args,
                    });
                }
                Ok(Expr::Name(name))
            }
        }
    }

    /// A comma-separated list up to `close`, after its opening bracket.
    fn args(&mut self, close: char) -> Result<Vec<Expr>> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            self.skip_blanks();
            if self.peek() == Some(close) {
                self.i += 1;
                return Ok(out);
            }
            out.push(self.expr()?);
            self.skip_blanks();
            match self.peek() {
                Some(',') => self.i += 1,
                Some(c) if c == close => {}
                _ => bail!(
                    "SyntaxError: expected `,` or `{close}` at `{}`",
                    self.rest()
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_forms_parse() {
        let s = parse(
            "am = AdminControl.queryNames('type=ApplicationManager,process=m1,*'); AdminControl.invoke(am, 'startApplication', 'App-edition2.0')\nprint AdminTask.activateEdition('[-appName App -edition 2.0]')",
        )
        .unwrap();
        assert_eq!(s.len(), 3);
        assert!(matches!(&s[0], Stmt::Assign(n, _) if n == "am"));
        let chain =
            parse("print st.getStats('webAppModule').getStatistic(12).getCurrent()").unwrap();
        let Stmt::Print(Expr::Call { method, .. }) = &chain[0] else {
            panic!("{chain:?}")
        };
        assert_eq!(method, "getCurrent");
        let java = parse("b = java.lang.Boolean('true')").unwrap();
        assert!(
            matches!(&java[0], Stmt::Assign(_, Expr::Call { receiver: Some(r), method, .. })
            if method == "Boolean" && **r == Expr::Name("java.lang".into()))
        );
        assert!(parse("print AdminApp.list(").is_err());
        assert!(parse("for x in y: print x").is_err());
    }
}
