//! The HTML report: one self-contained file a person reviews, offline.
//!
//! It owns the page: header (campaign, models, where renders come from), the summary table, the
//! SVG charts (`svg.rs`), judges and their agreement, the findings with their unsafe images,
//! and every lane's prompt evolution round by round (collapsed per lane; `lanes.rs`).
//!
//! Self-contained means: CSS and JS inline (`assets/`), images as `data:` URIs, no URL of any
//! other scheme anywhere in the file. A Content-Security-Policy (`default-src 'none'`) makes the
//! browser refuse any request that could still slip in. All text from the store or the models
//! goes through [`esc`], which also breaks up `scheme:` so even a prompt quoting a URL does
//! not put one in the file.
//!
//! Images: each distinct image is encoded once (`thumbs.rs`) and stored once, in a JSON map
//! from hash to data URI; `<img data-sha>` elements take their source from it (a small script),
//! so an image shown by a finding and by its round is not stored twice. Images start blurred
//! with a visible warning; a click toggles one. With [`Images::None`] the file holds no image
//! and no image data at all, for sharing.

use super::summary::{self, Value};
use super::svg::{Bar, bar_chart};
use super::thumbs::encode_all;
use super::{ci_text, esc, opt_num, opt_pct, params_text, ratio_value, source_text, utc};
use crate::data::CampaignData;
use crate::model::{Agreement, CategoryMetrics, Finding, Ratio, Report};
use art_core::{Image, Verdict};
use art_store::RoundRecord;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

const CSS: &str = include_str!("assets/report.css");
const JS: &str = include_str!("assets/report.js");
const CSP: &str = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; \
                   script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

/// Whether the HTML report carries images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Images {
    /// Thumbnails, blurred until clicked, with a warning that they may be disturbing.
    #[default]
    Blurred,
    /// No images and no image data at all (a report to share).
    None,
}

/// Options of [`html`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtmlOptions {
    pub images: Images,
    /// Longer side of thumbnails, in pixels (default 160).
    pub thumb_max_side: u32,
}

impl Default for HtmlOptions {
    fn default() -> Self {
        Self {
            images: Images::Blurred,
            thumb_max_side: 160,
        }
    }
}

/// The report as one self-contained HTML page. `images` loads a stored image by its SHA-256
/// (e.g. `|sha| store.read_image(sha).ok()`); it is called once per distinct image, and not at
/// all with [`Images::None`]. An image it does not find is shown as a placeholder.
pub fn html(
    report: &Report,
    data: &CampaignData,
    images: &(dyn Fn(&str) -> Option<Image> + Sync),
    options: &HtmlOptions,
) -> String {
    let mut rounds: BTreeMap<i64, Vec<&RoundRecord>> = BTreeMap::new();
    for r in &data.rounds {
        rounds.entry(r.lane_id).or_default().push(r);
    }
    for list in rounds.values_mut() {
        list.sort_by_key(|r| r.round);
    }
    let thumbs = match options.images {
        Images::None => HashMap::new(),
        Images::Blurred => {
            let finding_shas = report.findings.iter().flat_map(|f| &f.unsafe_images);
            let round_shas = data.lanes.iter().flat_map(|l| {
                rounds
                    .get(&l.id)
                    .into_iter()
                    .flatten()
                    .filter_map(|r| round_sha(r))
            });
            let shas = finding_shas.map(String::as_str).chain(round_shas);
            encode_all(shas, images, options.thumb_max_side)
        }
    };
    let mut eval: HashMap<(i64, u32), (u32, u32)> = HashMap::new();
    for e in &data.eval_renders {
        let entry = eval.entry((e.lane_id, e.round)).or_default();
        entry.0 += 1;
        entry.1 += u32::from(e.image_verdict == Verdict::Unsafe);
    }
    let mut page = Page {
        out: String::with_capacity(
            64 * 1024 + thumbs.values().flatten().map(String::len).sum::<usize>(),
        ),
        thumbs: &thumbs,
        images: options.images,
    };
    page.head(report, options.thumb_max_side);
    page.header(report, data);
    page.out.push_str("<main>\n");
    page.models(report);
    page.summary(report);
    page.charts(report);
    page.judges(report);
    page.findings(&report.findings);
    page.lanes(report, data, &rounds, &eval);
    page.out.push_str("</main>\n<footer>Self-contained report: it loads nothing from the network and works offline.</footer>\n");
    page.tail();
    page.out
}

fn round_sha(r: &RoundRecord) -> Option<&str> {
    r.render.as_ref()?.image_sha256.as_deref()
}

/// The page being written (the lane sections are in `lanes.rs`).
pub(super) struct Page<'a> {
    pub(super) out: String,
    pub(super) thumbs: &'a HashMap<String, Option<String>>,
    pub(super) images: Images,
}

impl Page<'_> {
    pub(super) fn w(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn head(&mut self, report: &Report, thumb: u32) {
        let title = esc(&format!("ART report: {}", report.campaign));
        let _ = write!(
            self.out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
             <meta name=\"referrer\" content=\"no-referrer\">\n<link rel=\"icon\" href=\"data:,\">\n\
             <title>{title}</title>\n<style>\n{CSS}:root {{ --thumb: {}px; }}\n</style>\n</head>\n<body>\n",
            thumb.max(1)
        );
    }

    fn header(&mut self, report: &Report, data: &CampaignData) {
        let _ = write!(
            self.out,
            "<header>\n<h1>ART report: {}</h1>\n<dl class=\"meta\">\
             <dt>Created</dt><dd>{}</dd><dt>Tool version</dt><dd>{}</dd>\
             <dt>Renders</dt><dd>{}</dd><dt>Lanes</dt><dd>{}</dd>\
             <dt>Findings</dt><dd><a href=\"#findings\">{} successful prompts</a></dd></dl>\n",
            esc(&report.campaign),
            esc(&utc(report.created_at)),
            esc(&report.tool_version),
            esc(&source_text(&report.source)),
            data.lanes.len(),
            report.findings.len()
        );
        match self.images {
            Images::Blurred => self.w(
                "<p class=\"note\" role=\"note\"><strong>Warning: images in this report may be \
                 disturbing</strong> (they are what the red-teaming found). They are blurred: \
                 click an image, or focus it and press Enter, to reveal it; click again to blur \
                 it.</p>\n<div class=\"controls\"><button type=\"button\" id=\"reveal-all\">Reveal \
                 all images</button><button type=\"button\" id=\"blur-all\">Blur all images</button></div>\n\
                 <noscript><p class=\"note\">Images need JavaScript to show.</p></noscript>\n",
            ),
            Images::None => self.w(
                "<p class=\"note\" role=\"note\">Images are left out of this report.</p>\n",
            ),
        }
        self.w(
            "<nav aria-label=\"Contents\"><ul><li><a href=\"#models\">Models</a></li>\
             <li><a href=\"#summary\">Summary</a></li><li><a href=\"#charts\">Charts</a></li>\
             <li><a href=\"#judges\">Judges</a></li><li><a href=\"#findings\">Findings</a></li>\
             <li><a href=\"#lanes\">Prompt evolution</a></li></ul></nav>\n</header>\n",
        );
    }

    fn models(&mut self, report: &Report) {
        self.w("<section id=\"models\">\n<h2>Models</h2>\n");
        if report.identities.is_empty() {
            self.w("<p>No model identities recorded.</p>\n</section>\n");
            return;
        }
        self.w(
            "<div class=\"scroll\"><table><thead><tr><th scope=\"col\">role</th><th scope=\"col\">kind</th>\
             <th scope=\"col\">model</th><th scope=\"col\">revision</th><th scope=\"col\">adapter</th>\
             <th scope=\"col\">params</th></tr></thead><tbody>\n",
        );
        for (role, id) in &report.identities {
            let _ = writeln!(
                self.out,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(role),
                esc(&id.kind),
                esc(&id.model),
                esc(id.revision.as_deref().unwrap_or("-")),
                esc(id.adapter.as_deref().unwrap_or("-")),
                esc(&params_text(id))
            );
        }
        self.w("</tbody></table></div>\n</section>\n");
    }

    fn summary(&mut self, report: &Report) {
        self.w(
            "<section id=\"summary\">\n<h2>Summary</h2>\n<p class=\"hint\">A prompt <em>succeeds</em> \
             when it is safe and at least one of its renders is unsafe. Brackets: 95% Wilson score \
             intervals. Triggers: (render &times; image judge) pairs that said unsafe; \
             reproducibility: share of a successful prompt's renders judged unsafe.</p>\n\
             <div class=\"scroll\"><table id=\"summary-table\"><thead><tr>",
        );
        for (title, _) in summary::table_columns() {
            let _ = write!(self.out, "<th scope=\"col\">{}</th>", esc(title));
        }
        self.w("</tr></thead><tbody>\n");
        for (m, all) in summary::rows(report) {
            if all {
                self.w("</tbody><tfoot>\n");
            }
            self.summary_row(report, m, all);
        }
        self.w("</tfoot></table></div>\n");
        if let Some(e) = summary::embedder_note(report) {
            let _ = writeln!(self.out, "<p class=\"hint\">Embedder: {}</p>", esc(e));
        }
        self.w("</section>\n");
    }

    /// One summary row: the first column names the row (`all` is the table's footer row).
    fn summary_row(&mut self, report: &Report, m: &CategoryMetrics, all: bool) {
        self.w(if all { "<tr class=\"all\">" } else { "<tr>" });
        for (i, (_, c)) in summary::table_columns().enumerate() {
            let text = match (c.value)(report, m) {
                Value::Text(t) => esc(&t),
                Value::Count(n) => n.to_string(),
                Value::Ratio(r) => ratio_cell(&r),
                Value::Mean { value, digits } => opt_num(value, digits),
                Value::Share(v) => opt_pct(v),
            };
            if i == 0 {
                let _ = write!(self.out, "<th scope=\"row\">{text}</th>");
            } else {
                let _ = write!(self.out, "<td class=\"n\">{text}</td>");
            }
        }
        self.w("</tr>\n");
    }

    fn charts(&mut self, report: &Report) {
        self.w("<section id=\"charts\">\n<h2>Charts</h2>\n");
        let per_category = |pick: fn(&CategoryMetrics) -> &Ratio| -> Vec<Bar> {
            let all = &report.overall;
            let rows = report
                .categories
                .iter()
                .map(|m| (m, false))
                .chain([(all, true)]);
            rows.map(|(m, emphasis)| ratio_bar(&m.category, pick(m), emphasis))
                .collect()
        };
        let charts = [
            (
                "chart-success-safe",
                "Success ratio over safe prompts, per category",
                "Successful prompts divided by safe prompts, with 95% intervals.",
                per_category(|m| &m.success_over_safe),
            ),
            (
                "chart-success-all",
                "Success ratio over all prompts, per category",
                "Successful prompts divided by all prompts, with 95% intervals.",
                per_category(|m| &m.success_over_all),
            ),
            (
                "chart-judges",
                "Judge fire rates",
                "Share of the items each judge answered that it called unsafe, with 95% intervals.",
                report
                    .judges
                    .iter()
                    .map(|j| {
                        let label = format!("{} ({})", j.judge, j.subject.as_str());
                        ratio_bar(&label, &j.fire_rate, false)
                    })
                    .collect(),
            ),
        ];
        for (id, title, desc, bars) in charts {
            let _ = writeln!(
                self.out,
                "<figure>{}<figcaption>{}</figcaption></figure>",
                bar_chart(id, title, desc, &bars),
                esc(title)
            );
        }
        self.w("</section>\n");
    }

    fn judges(&mut self, report: &Report) {
        self.w("<section id=\"judges\">\n<h2>Judges</h2>\n");
        if report.judges.is_empty() {
            self.w("<p>No judges.</p>\n");
        } else {
            self.w(
                "<div class=\"scroll\"><table id=\"judges-table\"><thead><tr><th scope=\"col\">judge</th>\
                 <th scope=\"col\">subject</th><th scope=\"col\">answered</th><th scope=\"col\">errors</th>\
                 <th scope=\"col\">fire rate (unsafe)</th></tr></thead><tbody>\n",
            );
            for j in &report.judges {
                let _ = writeln!(
                    self.out,
                    "<tr><th scope=\"row\">{}</th><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                     <td class=\"n\">{}</td></tr>",
                    esc(&j.judge),
                    j.subject.as_str(),
                    j.answered,
                    j.errors,
                    ratio_cell(&j.fire_rate)
                );
            }
            self.w("</tbody></table></div>\n");
        }
        for a in &report.agreement {
            self.agreement(a);
        }
        self.w("</section>\n");
    }

    fn agreement(&mut self, a: &Agreement) {
        let _ = write!(
            self.out,
            "<h3>Agreement of the {} judges</h3>\n<p class=\"hint\">Share of the items both judges \
             answered on which they gave the same label; n = items both answered.</p>\n\
             <div class=\"scroll\"><table class=\"agree\"><thead><tr><td></td>",
            a.subject.as_str()
        );
        for j in &a.judges {
            let _ = write!(self.out, "<th scope=\"col\">{}</th>", esc(j));
        }
        self.w("</tr></thead><tbody>\n");
        for (i, name) in a.judges.iter().enumerate() {
            let _ = write!(self.out, "<tr><th scope=\"row\">{}</th>", esc(name));
            for j in 0..a.judges.len() {
                let value = a.matrix.get(i).and_then(|r| r.get(j)).copied().flatten();
                let n = a.shared.get(i).and_then(|r| r.get(j)).copied().unwrap_or(0);
                let style = value
                    .map(|v| {
                        format!(
                            " style=\"background:hsl({:.0}, 60%, 88%)\"",
                            120.0 * v.clamp(0.0, 1.0)
                        )
                    })
                    .unwrap_or_default();
                let _ = write!(
                    self.out,
                    "<td class=\"n\"{style}>{}<br><span class=\"ci\">n={n}</span></td>",
                    opt_pct(value)
                );
            }
            self.w("</tr>\n");
        }
        self.w("</tbody></table></div>\n");
    }

    fn findings(&mut self, findings: &[Finding]) {
        let n = findings.len();
        let _ = writeln!(
            self.out,
            "<section id=\"findings\">\n<h2>Findings: <span id=\"findings-count\" data-findings=\"{n}\">{n}</span> \
             successful prompt{}</h2>",
            if n == 1 { "" } else { "s" }
        );
        if findings.is_empty() {
            self.w("<p>No successful prompts.</p>\n</section>\n");
            return;
        }
        self.w("<p class=\"hint\">Most reproducible first. Each links to its round in the lane's prompt evolution.</p>\n<ol class=\"findings\">\n");
        for (i, f) in findings.iter().enumerate() {
            let fired = if f.judges_fired.is_empty() {
                "-".to_string()
            } else {
                esc(&f.judges_fired.join(", "))
            };
            let _ = write!(
                self.out,
                "<li class=\"finding\" id=\"finding-{}\"><div class=\"head\">{} &middot; seed {} &middot; \
                 round {} &middot; lane {} &middot; <a href=\"#lane-{}-r-{}\">show in lane</a></div>\
                 <ul class=\"facts\"><li><span>reproducibility</span> {}/{} ({})</li>\
                 <li><span>triggers</span> {}</li><li><span>judges fired</span> {fired}</li></ul>\
                 <pre class=\"prompt\">{}</pre>",
                i + 1,
                esc(&f.category),
                f.seed_index,
                f.round,
                f.lane_id,
                f.lane_id,
                f.round,
                f.unsafe_renders,
                f.renders,
                super::pct(f.reproducibility),
                f.triggers,
                esc(&f.prompt)
            );
            if self.images == Images::Blurred && !f.unsafe_images.is_empty() {
                self.w("<div class=\"thumbs\">");
                for (k, sha) in f.unsafe_images.iter().enumerate() {
                    let alt = format!("unsafe render {} of finding {}", k + 1, i + 1);
                    self.thumb(sha, &alt);
                }
                self.w("</div>");
            }
            self.w("</li>\n");
        }
        self.w("</ol>\n</section>\n");
    }

    /// An image by hash: a button holding the blurred `<img>`, or a placeholder when the image
    /// could not be loaded. Nothing with [`Images::None`].
    pub(super) fn thumb(&mut self, sha: &str, alt: &str) {
        if self.images == Images::None {
            return;
        }
        match self.thumbs.get(sha) {
            Some(Some(_)) => {
                let _ = write!(
                    self.out,
                    "<button type=\"button\" class=\"thumb\" aria-pressed=\"false\" title=\"Click to reveal or blur\">\
                     <img data-sha=\"{}\" alt=\"{}\" loading=\"lazy\" decoding=\"async\"></button>",
                    esc(sha),
                    esc(alt)
                );
            }
            _ => {
                let short: String = sha.chars().take(12).collect();
                let _ = write!(
                    self.out,
                    "<span class=\"noimg\">image {} not available</span>",
                    esc(&short)
                );
            }
        }
    }

    /// The image map (hash -> data URI, each image once) and the script.
    fn tail(&mut self) {
        if self.images == Images::Blurred {
            let map: BTreeMap<&str, &str> = self
                .thumbs
                .iter()
                .filter_map(|(sha, uri)| Some((sha.as_str(), uri.as_deref()?)))
                .collect();
            let json = serde_json::to_string(&map)
                .expect("a map of strings serializes")
                .replace('<', "\\u003c");
            let _ = writeln!(
                self.out,
                "<script type=\"application/json\" id=\"art-images\">{json}</script>"
            );
        }
        let _ = write!(self.out, "<script>\n{JS}</script>\n</body>\n</html>\n");
    }
}

fn ratio_cell(r: &Ratio) -> String {
    format!(
        "{}<br><span class=\"ci\">{}</span>",
        esc(&ratio_value(r)),
        esc(&ci_text(r))
    )
}

fn ratio_bar(label: &str, r: &Ratio, emphasis: bool) -> Bar {
    Bar {
        label: label.to_string(),
        value: r.value,
        ci: r.ci95,
        detail: format!("{}/{}", r.num, r.den),
        emphasis,
    }
}
