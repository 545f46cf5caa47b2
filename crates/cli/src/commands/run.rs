//! `art run` and `art resume`.

use crate::args::{ProgressMode, ResumeArgs, RunArgs};
use crate::progress::Progress;
use crate::{Failure, factory, time};
use anyhow::anyhow;
use art_config::{Config, Overrides};
use art_engine::{CampaignSpec, Engine, Roles, RunSummary, plan_lanes};
use art_store::{CampaignRecord, Store};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub fn run(a: RunArgs) -> Result<(), Failure> {
    let layers = super::layers::config_layers(a.preset.as_deref(), a.config.as_deref())?;
    let baseline = match &a.prompts {
        None => None,
        Some(path) => Some(art_config::Baseline {
            label: a.label.clone().unwrap_or_else(|| {
                path.file_stem()
                    .map_or("baseline".into(), |s| s.to_string_lossy().into_owned())
            }),
            source: path.display().to_string(),
            prompts: crate::prompts::read(path).map_err(Failure::usage)?,
        }),
    };
    let seed_prompts = match &a.seed_prompts {
        None => None,
        Some(path) => Some(crate::prompts::seed_prompts(path).map_err(Failure::usage)?),
    };
    let overrides = Overrides {
        baseline,
        seed_prompts,
        name: a.name.clone(),
        seed: a.seed,
        rounds: a.rounds,
        seeds: a.seeds,
        categories: (!a.categories.is_empty()).then(|| a.categories.clone()),
        batch_size: a.batch_size,
        parallel_roles: a.parallel_roles,
    };
    let mut config = art_config::load(&layers, &overrides)?;
    let spec = CampaignSpec::from_config(&config).map_err(Failure::usage)?;
    // Every role is checked and built before anything is written.
    let roles = factory::build(&config)?;

    let created_at = time::now_unix();
    let name = config.campaign.name.clone().unwrap_or_else(|| {
        format!(
            "art-{}",
            time::utc(created_at)
                .replace([' ', ':'], "")
                .replace('-', "")
        )
    });
    check_name(&name)?;
    config.campaign.name = Some(name.clone());
    let dir = a.out.join(&name);
    let record = CampaignRecord {
        name,
        created_at,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        config_toml: config.to_toml(),
        identities: factory::identities(&roles),
    };
    let mut store = Store::create(&dir, &record).map_err(|e| match e {
        art_store::StoreError::AlreadyExists { .. } => Failure::usage(anyhow!(
            "{} already holds a campaign; continue it with `art resume {}` or pick another --name",
            dir.display(),
            dir.display()
        )),
        e => e.into(),
    })?;
    let lanes = plan_lanes(&spec);
    store.insert_lanes(&lanes)?;
    eprintln!("campaign {}", dir.display());
    if let Some(sp) = &spec.seed_prompts {
        eprintln!(
            "{} lanes start from the seed prompts of {}",
            lanes.len(),
            sp.source
        );
    }
    drive(&spec, &roles, &mut store, a.progress)
}

/// Campaign names become folder names: keep them to one plain path component.
fn check_name(name: &str) -> Result<(), Failure> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Failure::usage(anyhow!(
            "campaign name `{name}` is not allowed: use letters, digits, `-`, `_` and `.` only"
        )))
    }
}

pub fn resume(a: ResumeArgs) -> Result<(), Failure> {
    let mut store = Store::open(&a.campaign)?;
    let campaign = store.campaign()?;
    let mut config = Config::from_stored(
        &campaign.config_toml,
        &format!("{} (stored config)", a.campaign.display()),
    )?;
    if let Some(b) = a.batch_size {
        if b == 0 {
            return Err(Failure::usage(anyhow!("--batch-size must be at least 1")));
        }
        config.campaign.batch_size = b;
    }
    if let Some(p) = a.parallel_roles {
        if !(1..=5).contains(&p) {
            return Err(Failure::usage(anyhow!("--parallel-roles must be 1 to 5")));
        }
        config.campaign.parallel_roles = p;
    }
    let spec = CampaignSpec::from_config(&config).map_err(Failure::usage)?;
    let roles = factory::build(&config)?;
    let now = factory::identities(&roles);
    if now != campaign.identities {
        let changed: Vec<_> = campaign
            .identities
            .keys()
            .chain(now.keys())
            .filter(|k| campaign.identities.get(*k) != now.get(*k))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(String::as_str)
            .collect();
        return Err(Failure::usage(anyhow!(
            "the roles that would resume {} differ from the ones that started it ({}); \
             resuming would mix models in one campaign. Start a new campaign instead.",
            a.campaign.display(),
            changed.join(", ")
        )));
    }
    // A process killed right after creating the store may have left it without lanes.
    if store.lanes()?.is_empty() {
        store.insert_lanes(&plan_lanes(&spec))?;
    }
    drive(&spec, &roles, &mut store, a.progress)
}

fn drive(
    spec: &CampaignSpec,
    roles: &Roles,
    store: &mut Store,
    mode: ProgressMode,
) -> Result<(), Failure> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // A second Ctrl-C exits at once; committed rounds are safe either way.
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping after the current batch (Ctrl-C again to quit now)");
    });
    let mut progress = Progress::new(mode, "rounds");
    let dir = store.dir().to_path_buf();
    let summary = Engine::new(spec, roles, store)
        .with_stop_flag(stop)
        .on_event(|e| progress.handle(e))
        .run()
        .map_err(Failure::runtime)?;
    progress.finish();
    report(&dir, &summary)
}

fn report(dir: &Path, s: &RunSummary) -> Result<(), Failure> {
    if s.rounds_committed > 0 {
        super::report::print_summary(dir);
    }
    let wall = s.wall.as_secs_f64();
    let outside = (wall - s.role_time.as_secs_f64()).max(0.0);
    eprintln!(
        "{} rounds committed in {wall:.1}s ({:.0}% of it outside role calls); lanes: {} done, {} failed, {} open",
        s.rounds_committed,
        if wall > 0.0 {
            100.0 * outside / wall
        } else {
            0.0
        },
        s.lanes_done,
        s.lanes_failed,
        s.lanes_open
    );
    if s.interrupted {
        return Err(Failure::Interrupted(format!(
            "stopped; continue with `art resume {}`",
            dir.display()
        )));
    }
    if s.lanes_failed > 0 {
        return Err(Failure::runtime(anyhow!(
            "{} lane(s) failed (see `art show {}`); `art resume` retries them",
            s.lanes_failed,
            dir.display()
        )));
    }
    Ok(())
}
