//! Errors, worded like Go's text/template and Helm's so users can grep for them.

use thiserror::Error;

#[derive(Debug, Clone, Error, PartialEq)]
pub enum Error {
    /// `template: NAME:LINE: MSG`
    #[error("template: {name}:{line}: {msg}")]
    Parse {
        name: String,
        line: usize,
        msg: String,
    },
    /// `template: FILE:LINE:COL: executing "NAME" at <CONTEXT>: MSG`
    #[error("{0}")]
    Exec(Box<ExecError>),
    /// An execution error without a node (unknown template name and such).
    #[error("template: {name}: {msg}")]
    ExecNoNode { name: String, msg: String },
    #[error("{0}")]
    Yaml(String),
    #[error("{0}")]
    Set(String),
    #[error("{0}")]
    Chart(String),
}

/// An execution error with the node it happened at.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecError {
    /// The template being executed (a `define` name or the file name).
    pub name: String,
    /// The file the failing node was parsed from.
    pub file: String,
    pub line: usize,
    /// Go's byte column (0-based on a template's first line, as Go prints it).
    pub col: usize,
    /// The node, printed as Go prints it.
    pub context: String,
    pub msg: String,
    /// The message of a `required`/`fail` call at the bottom of the chain (Helm reports only it).
    pub user: Option<String>,
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "template: {}:{}:{}: executing \"{}\" at <{}>: {}",
            self.file, self.line, self.col, self.name, self.context, self.msg
        )
    }
}

impl Error {
    /// The `required`/`fail` message an execution error carries, if any.
    pub fn user_message(&self) -> Option<&str> {
        match self {
            Error::Exec(e) => e.user.as_deref(),
            _ => None,
        }
    }

    /// The template (file) name the error points into.
    pub fn template_name(&self) -> Option<&str> {
        match self {
            Error::Parse { name, .. } => Some(name),
            Error::Exec(e) => Some(&e.file),
            Error::ExecNoNode { name, .. } => Some(name),
            _ => None,
        }
    }

    pub fn line(&self) -> Option<usize> {
        match self {
            Error::Parse { line, .. } => Some(*line),
            Error::Exec(e) => Some(e.line),
            _ => None,
        }
    }

    /// Go's byte offset within the line (0-based on the first line, like Go prints it).
    pub fn column(&self) -> Option<usize> {
        match self {
            Error::Exec(e) => Some(e.col),
            _ => None,
        }
    }

    /// Helm's rewording: `execution error at (FILE:LINE:COL): MSG` for `required`/`fail`.
    pub fn helm_message(&self) -> String {
        match self {
            Error::Exec(e) if e.user.is_some() => {
                format!(
                    "execution error at ({}:{}:{}): {}",
                    e.file,
                    e.line,
                    e.col,
                    e.user.as_deref().unwrap_or_default()
                )
            }
            other => other.to_string(),
        }
    }
}
