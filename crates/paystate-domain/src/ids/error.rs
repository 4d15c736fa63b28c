//! The one error every identifier and value type answers when its input breaks a rule.

/// Why a value could not become one of the domain's identifier or value types.
///
/// Each variant names the `field` (the type's human name, e.g. `"reference"`) and the rule it
/// broke, so an HTTP edge can answer `400 invalid_request` with the field named without
/// inspecting strings. Offending input is echoed only in shortened form, because it may be
/// arbitrary bytes from an unauthenticated request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The input was empty where a value is required.
    #[error("{field} must not be empty ({rule})")]
    Empty {
        field: &'static str,
        rule: &'static str,
    },
    /// The input was shorter or longer than the rule allows.
    #[error("{field} has {len} characters; it must be {rule}")]
    Length {
        field: &'static str,
        rule: &'static str,
        len: usize,
    },
    /// A character outside the allowed alphabet, or in a place where it is not allowed.
    /// `index` counts from 0; the message counts from 1, as a reader does.
    #[error("{field} has {found:?} at character {}; it must be {rule}", .index + 1)]
    Character {
        field: &'static str,
        rule: &'static str,
        index: usize,
        found: char,
    },
    /// The input is not one of a closed set of names.
    #[error("{field} is {got:?}; it must be {rule}")]
    NotOneOf {
        field: &'static str,
        rule: &'static str,
        got: String,
    },
    /// A number outside the allowed range, or not a number at all.
    #[error("{field} must be {rule}")]
    Range {
        field: &'static str,
        rule: &'static str,
    },
}

impl IdError {
    /// The name of the field whose rule was broken, e.g. `"msn"`.
    pub fn field(&self) -> &'static str {
        match self {
            IdError::Empty { field, .. }
            | IdError::Length { field, .. }
            | IdError::Character { field, .. }
            | IdError::NotOneOf { field, .. }
            | IdError::Range { field, .. } => field,
        }
    }

    /// The rule, in words, e.g. `"4 to 10 digits"`.
    pub fn rule(&self) -> &'static str {
        match self {
            IdError::Empty { rule, .. }
            | IdError::Length { rule, .. }
            | IdError::Character { rule, .. }
            | IdError::NotOneOf { rule, .. }
            | IdError::Range { rule, .. } => rule,
        }
    }
}

/// How much of an offending input an error may repeat.
const ECHO_LIMIT: usize = 40;

/// A shortened copy of untrusted input, safe to put in an error message.
pub(crate) fn echo(input: &str) -> String {
    let mut shown: String = input.chars().take(ECHO_LIMIT).collect();
    if input.chars().nth(ECHO_LIMIT).is_some() {
        shown.push('…');
    }
    shown
}

/// A text rule: length bounds in characters and an alphabet that may depend on the position.
pub(crate) struct TextRule {
    pub field: &'static str,
    pub rule: &'static str,
    pub min: usize,
    pub max: usize,
    pub allowed: fn(index: usize, c: char) -> bool,
}

impl TextRule {
    pub(crate) fn check(&self, input: &str) -> Result<(), IdError> {
        if input.is_empty() {
            return Err(IdError::Empty {
                field: self.field,
                rule: self.rule,
            });
        }
        let len = input.chars().count();
        if len < self.min || len > self.max {
            return Err(IdError::Length {
                field: self.field,
                rule: self.rule,
                len,
            });
        }
        match input
            .chars()
            .enumerate()
            .find(|&(index, c)| !(self.allowed)(index, c))
        {
            Some((index, found)) => Err(IdError::Character {
                field: self.field,
                rule: self.rule,
                index,
                found,
            }),
            None => Ok(()),
        }
    }
}
