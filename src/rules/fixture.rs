//! The rule tests' fixtures live in `crate::testing`, the one home of unit-test fixtures; this
//! name stays so the rule tests' imports read `rules::fixture`.

pub(crate) use crate::testing::*;
