//! YAML as kubectl, Helm and Argo CD read it, in and out.
//!
//! They all read manifests with sigs.k8s.io/yaml on go-yaml v2, a YAML 1.1 reader: a bare `on`,
//! `yes` or `y` is the boolean `true`, `0755` is the octal 493, `1_000` is 1000. YAML 1.2 readers
//! (most libraries today) read the same text differently. [`load`] reads a document the way
//! kubectl does, so the object dbhook judges is the object the API server receives; [`emit`]
//! writes values so that both kinds of reader read them back unchanged.

pub mod emit;
pub mod load;

pub use emit::document as emit_document;
pub use load::{LoadError, document as load_document};
