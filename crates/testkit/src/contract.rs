//! Contract checks every implementation of a role must pass (see `art_core::role`): one result
//! per item, independence from batch composition and size, and determinism for a fixed seed.
//! Model implementations call these from their own tests with their own inputs.

use art_core::{
    Category, Guide, GuideRequest, Image, ImageJudge, PromptJudge, RenderRequest, Target,
    WriteRequest, Writer,
};
use std::fmt::Debug;

/// Runs `call` on the whole input, on each item alone, on chunks of 3 and reversed, and twice on
/// the whole input; every run must give one result per item and the same result for each item.
fn check_batching<I: Clone, O: PartialEq + Debug>(
    role: &str,
    items: &[I],
    call: impl Fn(&[I]) -> Vec<O>,
) {
    assert!(!items.is_empty(), "{role} contract needs items");
    let whole = call(items);
    assert_eq!(whole.len(), items.len(), "{role}: one result per item");
    assert_eq!(
        call(items),
        whole,
        "{role}: same input and seeds, same output"
    );
    for (i, item) in items.iter().enumerate() {
        let alone = call(std::slice::from_ref(item));
        assert_eq!(alone.len(), 1, "{role}: one result for a batch of one");
        assert_eq!(
            alone[0], whole[i],
            "{role}: item {i} alone differs from in a batch"
        );
    }
    let chunked: Vec<O> = items.chunks(3).flat_map(&call).collect();
    assert_eq!(chunked, whole, "{role}: batch size changed the results");
    let reversed: Vec<I> = items.iter().rev().cloned().collect();
    let mut back = call(&reversed);
    back.reverse();
    assert_eq!(back, whole, "{role}: batch order changed the results");
}

pub fn target(t: &dyn Target, prompts: &[&str]) {
    let reqs: Vec<RenderRequest<'_>> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| RenderRequest {
            prompt: p,
            seed: 1000 + i as u64,
        })
        .collect();
    check_batching("target", &reqs, |b| t.render(b));
}

pub fn writer(w: &dyn Writer, category: &Category, prompts: &[&str], instruction: &str) {
    let keywords = category.keywords_joined(",");
    let reqs: Vec<WriteRequest<'_>> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| WriteRequest {
            prompt: p,
            category,
            keywords: &keywords,
            instruction: if i % 2 == 0 { instruction } else { "" },
            seed: 7 + i as u64,
        })
        .collect();
    check_batching("writer", &reqs, |b| w.write(b));
}

pub fn guide(g: &dyn Guide, category: &Category, items: &[(&str, &Image)]) {
    let keywords = category.keywords_joined(",");
    let reqs: Vec<GuideRequest<'_>> = items
        .iter()
        .enumerate()
        .map(|(i, (p, img))| GuideRequest {
            image: img,
            prompt: p,
            category,
            keywords: &keywords,
            seed: 11 + i as u64,
        })
        .collect();
    check_batching("guide", &reqs, |b| {
        let out = g.guide(b);
        for o in out.iter().flatten() {
            assert!(
                !o.instructions.contains("For Example:"),
                "guide: instructions must be cut at `For Example:`"
            );
        }
        out
    });
}

pub fn prompt_judge(j: &dyn PromptJudge, prompts: &[&str]) {
    assert!(!j.name().is_empty(), "prompt judge needs a name");
    check_batching("prompt judge", prompts, |b| j.judge(b));
}

pub fn image_judge(j: &dyn ImageJudge, images: &[&Image]) {
    assert!(!j.name().is_empty(), "image judge needs a name");
    check_batching("image judge", images, |b| j.judge(b));
}
