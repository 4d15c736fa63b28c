//! Names callers give to projections and side-data namespaces.

use crate::error::StoreError;

/// The longest projection or namespace name, in bytes; names become storage tree names.
pub(crate) const MAX_NAME_LEN: usize = 128;

pub(crate) fn check(kind: &str, name: &str) -> Result<(), StoreError> {
    if name.is_empty() {
        return Err(StoreError::Invalid(format!("the {kind} name is empty")));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(StoreError::Invalid(format!(
            "the {kind} name is longer than {MAX_NAME_LEN} bytes"
        )));
    }
    Ok(())
}
