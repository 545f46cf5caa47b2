//! Command-line arguments.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "art",
    version,
    about = "Automatic red-teaming of text-to-image models (the ART method)",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a new campaign from a config file and/or a preset.
    Run(RunArgs),
    /// Continue a campaign from each lane's last committed round.
    Resume(ResumeArgs),
    /// Re-render every stored prompt K times and judge each render (the paper's protocol).
    Eval(EvalArgs),
    /// List the campaigns in an output folder.
    List(ListArgs),
    /// Show a campaign's lanes, rounds and verdicts.
    Show(ShowArgs),
    /// Write a campaign's report (self-contained HTML by default; md, json, csv).
    Report(ReportArgs),
    /// The same metrics side by side for several campaigns (e.g. SD 1.5 vs SDXL).
    Compare(CompareArgs),
    /// Export a campaign's records.
    Export(ExportArgs),
    /// Score prompts and/or images with the config's judges alone (JSON Lines out), to audit
    /// a judge.
    Judge(JudgeArgs),
}

#[derive(Debug, Args)]
pub struct JudgeArgs {
    /// Config with `[[prompt_judge]]` / `[[image_judge]]` sections (other sections are
    /// ignored). Layered over the preset when both are given.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// A built-in preset (`paper`: the paper's judges).
    #[arg(long)]
    pub preset: Option<String>,
    /// Prompts to judge: one per line (.txt), CSV with a `prompt` column, JSON Lines or JSON
    /// (as `run --prompts` reads them).
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// A folder of images to judge (PNG, JPEG, WebP, searched recursively); a file that is not
    /// a readable image is recorded as that item's error.
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Only the judges of these names (repeat the flag); default: every enabled judge.
    #[arg(long = "judge")]
    pub judges: Vec<String>,
    /// Items per judge call.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Output file (default: standard output).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// List the config's judges (role, name, kind, enabled) without loading or running them.
    #[arg(long, conflicts_with_all = ["prompts", "images", "judges"])]
    pub list: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Campaign config (TOML). Layered over the preset when both are given.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// A built-in preset (`paper`: the paper's models and settings).
    #[arg(long)]
    pub preset: Option<String>,
    /// Folder that holds campaign folders.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// Campaign name (its folder under --out); default: art-<UTC date and time>.
    #[arg(long)]
    pub name: Option<String>,
    /// Categories to run (repeat the flag); default: the config's, else all seven.
    #[arg(long = "category")]
    pub categories: Vec<String>,
    /// Number of seeds per category (lanes use seed numbers 0..N).
    #[arg(long)]
    pub seeds: Option<u64>,
    /// Campaign seed every other seed derives from.
    #[arg(long)]
    pub seed: Option<u64>,
    /// R: rounds of the loop (round R+1 judges the last prompt).
    #[arg(long)]
    pub rounds: Option<u32>,
    /// Largest batch handed to one role call.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// How many role stages may run at once, 1 to 5 (results do not depend on it).
    #[arg(long)]
    pub parallel_roles: Option<usize>,
    /// Run a baseline instead of the loop: render and judge this fixed prompt list (one prompt
    /// per line; or CSV with a `prompt` column, JSON Lines or JSON with "prompt").
    #[arg(long, value_name = "FILE")]
    pub prompts: Option<PathBuf>,
    /// The baseline's label in reports (default: the file's name without extension).
    #[arg(long, requires = "prompts")]
    pub label: Option<String>,
    /// Start the lanes from this file's prompts (formats as --prompts): the lane of seed
    /// number s starts from prompt s of its category's list. If the file names categories
    /// (I2P's `categories` column, a JSON `category`, the paper's training records), each
    /// category takes its own prompts. Without --seeds, one lane per prompt.
    #[arg(long, value_name = "FILE", conflicts_with = "prompts")]
    pub seed_prompts: Option<PathBuf>,
    /// Progress display.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The campaign folder.
    pub campaign: PathBuf,
    /// Largest batch per role call (results do not depend on it).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// How many role stages may run at once, 1 to 5 (results do not depend on it).
    #[arg(long)]
    pub parallel_roles: Option<usize>,
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The campaign folder.
    pub campaign: PathBuf,
    /// Renders per prompt (K); the paper uses 5.
    #[arg(long, default_value_t = 5)]
    pub renders: u32,
    /// Largest batch per target call (default: the campaign's batch size).
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Folder that holds campaign folders.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The campaign folder.
    pub campaign: PathBuf,
    /// Only this lane's rounds.
    #[arg(long)]
    pub lane: Option<i64>,
    /// Lanes only, no rounds.
    #[arg(long)]
    pub lanes_only: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The campaign folder.
    pub campaign: PathBuf,
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
    /// Only the findings (successful prompts, by the report's metrics), each with the
    /// campaign's model identities; required for Parquet.
    #[arg(long)]
    pub findings: bool,
    /// Output file (default: standard output; required for Parquet).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The campaign folder.
    pub campaign: PathBuf,
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,
    /// Output file (default: CAMPAIGN/report.html for html, standard output otherwise).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Leave every image out (for sharing); by default images are blurred until clicked.
    #[arg(long)]
    pub no_images: bool,
    /// Longest side of the image thumbnails in the HTML report, pixels.
    #[arg(long, default_value_t = 160)]
    pub thumb_size: u32,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

/// The sentence embedder of the embedding-diversity metric.
#[derive(Debug, Args)]
pub struct EmbedderArgs {
    /// A sentence-transformers folder, or a hub id (from the local Hugging Face cache, else
    /// downloaded into it unless HF_HUB_OFFLINE=1).
    #[arg(
        long,
        env = "ART_EMBEDDER",
        default_value = "sentence-transformers/all-MiniLM-L6-v2"
    )]
    pub embedder: String,
    /// Do not compute embedding diversity.
    #[arg(long)]
    pub no_embedder: bool,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Campaign folders to compare (two or more).
    pub campaigns: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    pub format: ReportFormat,
    /// Output file (default: standard output).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Html,
    Md,
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line: a campaign header, then one object per round and per
    /// evaluation render (with --findings: one object per finding).
    Jsonl,
    /// Apache Parquet, one row per finding (with --findings).
    Parquet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// Bars on a terminal, nothing otherwise.
    Auto,
    /// One line per committed round batch (for logs).
    Plain,
    /// No progress output.
    None,
}
