//! The one error the ports and server functions answer with: what went wrong in terms a
//! page can act on (sign in again, not allowed, not there, fix a field, reload, or wait and
//! retry), serialised as JSON so it crosses the wire with its kind intact.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

use crate::domain::FieldError;

/// Why a request to the server (or a port) did not do what was asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// Nobody is signed in, or the session ended.
    #[error("you are signed out; sign in again")]
    SignedOut,
    /// Signed in, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// It does not exist, or not for this person.
    #[error("{0}")]
    NotFound(String),
    /// The input breaks a rule; `fields` names the fields when the rules are a form's.
    #[error("{message}")]
    Invalid {
        /// What is wrong, for people.
        message: String,
        /// The fields at fault, for a form to show beside them.
        fields: Vec<FieldError>,
    },
    /// It changed meanwhile (someone else's edit, or a stale page): reload and try again.
    #[error("{0}")]
    Conflict(String),
    /// The server could not do it now (unreachable, busy, its database down); the same
    /// request may succeed later.
    #[error("{0}")]
    Retryable(String),
}

impl AppError {
    /// An input that breaks a rule not tied to one field.
    #[must_use]
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid {
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// A report that breaks its field rules.
    #[must_use]
    pub fn fields(fields: Vec<FieldError>) -> Self {
        let message = fields
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        Self::Invalid { message, fields }
    }

    /// Whether the same request may succeed later, so a device may retry it.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable(_))
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // The network, the server or something between them failed: worth retrying.
            ServerFnErrorErr::Request(e) => Self::Retryable(format!("the server could not be reached: {e}")),
            ServerFnErrorErr::ServerError(e)
            | ServerFnErrorErr::MiddlewareError(e)
            | ServerFnErrorErr::Response(e) => Self::Retryable(e),
            // The request itself is wrong: sending it again will not help.
            ServerFnErrorErr::Registration(e)
            | ServerFnErrorErr::UnsupportedRequestMethod(e)
            | ServerFnErrorErr::Deserialization(e)
            | ServerFnErrorErr::Serialization(e)
            | ServerFnErrorErr::Args(e)
            | ServerFnErrorErr::MissingArg(e) => Self::invalid(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use leptos::server_fn::{Decodes, Encodes};

    use super::*;

    #[test]
    fn every_kind_crosses_the_wire_intact() {
        let kinds = [
            AppError::SignedOut,
            AppError::Forbidden("no".into()),
            AppError::NotFound("gone".into()),
            AppError::fields(vec![FieldError {
                field: "title".into(),
                message: "Give the report a short title.".into(),
            }]),
            AppError::Conflict("changed".into()),
            AppError::Retryable("busy".into()),
        ];
        for kind in kinds {
            let bytes = JsonEncoding::encode(&kind).unwrap();
            assert_eq!(<JsonEncoding as Decodes<AppError>>::decode(bytes).unwrap(), kind);
        }
    }

    #[test]
    fn only_the_network_and_the_server_s_trouble_are_retryable() {
        assert!(AppError::Retryable("busy".into()).is_retryable());
        assert!(!AppError::Forbidden("no".into()).is_retryable());
        let unreachable = AppError::from_server_fn_error(ServerFnErrorErr::Request("offline".into()));
        assert!(unreachable.is_retryable());
        let garbled = AppError::from_server_fn_error(ServerFnErrorErr::Deserialization("eh".into()));
        assert!(!garbled.is_retryable());
    }
}
