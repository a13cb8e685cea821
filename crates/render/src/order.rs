//! Apply order: Helm's install order by kind (the template engine's own list),
//! so what a Pod mounts exists before the Pod; template order, then instance
//! order, within a kind.

use crate::RenderedObject;
use midplane_template::chart::INSTALL_ORDER;

pub fn kind_rank(kind: &str) -> usize {
    INSTALL_ORDER
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(INSTALL_ORDER.len())
}

/// Stable: objects of one kind keep their rendering order.
pub fn sort_for_apply(objects: &mut [RenderedObject]) {
    objects.sort_by_key(|o| kind_rank(o.kind()));
}
