//! Why part of an object could not be decoded, with the exact place.

/// A field that does not have the shape the model reads, at a dotted path
/// (`spec.template.spec.containers[0].env[1].value`). Its text may quote the input: redact it
/// before it leaves the process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct FieldError {
    pub at: String,
    pub message: String,
}

impl FieldError {
    pub fn new(at: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            at: at.into(),
            message: message.into(),
        }
    }
}
