//! `art eval`: the evaluation protocol's re-renders of a campaign's prompts.

use crate::args::EvalArgs;
use crate::progress::Progress;
use crate::{Failure, factory, time};
use anyhow::anyhow;
use art_config::Config;
use art_engine::Evaluator;
use art_store::{EvaluationRecord, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub fn eval(a: EvalArgs) -> Result<(), Failure> {
    if a.renders == 0 {
        return Err(Failure::usage(anyhow!("--renders must be at least 1")));
    }
    let mut store = Store::open(&a.campaign)?;
    let campaign = store.campaign()?;
    let config = Config::from_stored(
        &campaign.config_toml,
        &format!("{} (stored config)", a.campaign.display()),
    )?;
    let (target, judges) = factory::build_eval(&config)?;
    let identities = factory::eval_identities(target.as_ref(), &judges);
    if let Some(prev) = store.evaluation()? {
        if prev.identities != identities {
            return Err(Failure::usage(anyhow!(
                "{} was evaluated with other models (target or image judges changed); an \
                 evaluation must use one set of models",
                a.campaign.display()
            )));
        }
        if a.renders < prev.renders {
            return Err(Failure::usage(anyhow!(
                "{} is evaluated with {} renders per prompt; --renders {} would leave it \
                 inconsistent (ask for {} or more)",
                a.campaign.display(),
                prev.renders,
                a.renders,
                prev.renders
            )));
        }
    }
    store.set_evaluation(&EvaluationRecord {
        renders: a.renders,
        started_at: time::now_unix(),
        identities,
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping after the current batch (Ctrl-C again to quit now)");
    });
    let batch = a.batch_size.unwrap_or(config.campaign.batch_size).max(1);
    let mut progress = Progress::new(a.progress, "renders");
    let summary = Evaluator::new(target.as_ref(), &judges, &mut store, a.renders, batch)
        .with_stop_flag(stop)
        .on_event(|e| progress.handle_eval(e))
        .run()
        .map_err(Failure::from)?;
    progress.finish();
    eprintln!(
        "{} renders committed in {:.1}s; {} failed, {} missing",
        summary.committed,
        summary.wall.as_secs_f64(),
        summary.failed,
        summary.missing
    );
    super::report::print_summary(&a.campaign);
    let dir = a.campaign.display();
    if summary.interrupted {
        return Err(Failure::Interrupted(format!(
            "stopped; continue with `art eval {dir} --renders {}`",
            a.renders
        )));
    }
    if summary.missing > 0 {
        return Err(Failure::runtime(anyhow!(
            "{} render(s) failed; `art eval {dir} --renders {}` again retries them",
            summary.missing,
            a.renders
        )));
    }
    Ok(())
}
