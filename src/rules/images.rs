//! `image-tag-pinned`: labelled workloads run images pinned to a release.

use super::catalog::IMAGE_TAG_PINNED;
use super::{Ctx, Violation};
use crate::model::workload::dotted;
use crate::model::{ImageRef, Object};

pub fn tag_pinned(obj: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    let (Some(w), Some(_)) = (obj.workload(), obj.db_cluster()) else {
        return;
    };
    let params = &ctx.policy.params.image_tag_pinned;
    for c in w.containers() {
        let image = ImageRef::parse(c.image());
        // A digest pins the exact image whatever the tag says.
        if image.digest.is_some() {
            continue;
        }
        let expected = match &params.tag_pattern {
            Some(re) => format!(
                "a digest, or a tag matching {} other than {}",
                re.as_str(),
                params.forbidden_tags.join(", ")
            ),
            None if params.forbidden_tags.is_empty() => "a tag or a digest".to_string(),
            None => format!("a tag other than {}, or a digest", params.forbidden_tags.join(", ")),
        };
        let problem = match image.tag {
            None => "has no tag (it floats with latest)".to_string(),
            Some(tag) if params.forbidden_tags.iter().any(|f| f == tag) => format!("uses the floating tag {tag}"),
            Some(tag) => match &params.tag_pattern {
                Some(re) if !re.is_match(tag) => {
                    format!("tag {tag} does not match the required pattern {}", re.as_str())
                }
                _ => continue,
            },
        };
        out.push(
            Violation::new(
                IMAGE_TAG_PINNED,
                format!(
                    "container {} image {} {problem}: pin a release tag or a digest",
                    c.name(),
                    c.image()
                ),
            )
            .at(format!(
                "{}.{}[{}].image",
                dotted(w.kind.pod_spec_pointer()),
                c.list.field(),
                c.index
            ))
            .evidence(format!("container {} image {}", c.name(), c.image()), expected),
        );
    }
}

#[cfg(test)]
mod tests;
