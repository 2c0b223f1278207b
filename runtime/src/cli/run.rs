//! `kefu run FLOW`: chat with a flow in the terminal. Lookups are answered from a fixture
//! file; slash commands stand in for the outside world (timers, agents).

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use flows::engine::{Effect, Expect, Input, LookupResult, Millis, Output, StartInput, Waiting};
use flows::fixtures::Fixtures;
use flows::{Engine, Session};

use super::files;
use crate::engines::Engines;

const HELP: &str = "commands: /timer [id] fires a timer, /handback [node] returns from an agent, \
/restart, /cancel, /vars shows variables, /quit";

pub fn main(
    file: &Path,
    locale: &str,
    fixtures: Option<&Path>,
    session_id: &str,
    now: Option<&str>,
) -> ExitCode {
    let offset = local_offset_minutes();
    let start_at = match now.map(|text| parse_local_time(text, offset)) {
        None => None,
        Some(Ok(at)) => Some(at),
        Some(Err(error)) => {
            eprintln!("kefu: --now: {error}");
            return ExitCode::FAILURE;
        }
    };
    let loaded = files::load(file);
    let flow = match &loaded.flow {
        Ok(flow) => flow.clone(),
        Err(error) => {
            eprintln!("{}: error: {error}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let mut engines = Engines::new(files::library_for(std::slice::from_ref(&loaded)));
    // The bundled flows are compiled into `kefu`; they run as generated code while the files
    // hold exactly those flows.
    for compiled in crate::compiled::bundled() {
        engines.register(compiled);
    }
    let engine = match engines.engine_for(&flow.id) {
        Ok(engine) => engine,
        Err(flows::engine::LoadFlowsError::Invalid { flow, diagnostics }) => {
            eprintln!(
                "{}: the flow `{flow}` has errors; fix them first (`kefu validate`):",
                file.display()
            );
            for d in diagnostics {
                eprintln!("  {d}");
            }
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("{}: error: {error}", file.display());
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "kefu: `{}` runs {}",
        flow.id,
        if engines.is_compiled(&flow.id) {
            "as the Rust module compiled into kefu"
        } else {
            "on the interpreter"
        }
    );
    let fixtures_path = fixtures.map(Path::to_owned).or_else(|| {
        let beside = file
            .parent()
            .unwrap_or(Path::new("."))
            .join("fixtures.json");
        beside.exists().then_some(beside)
    });
    let fixtures = match fixtures_path {
        None => Fixtures::default(),
        Some(path) => match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| Fixtures::from_json(&t))
        {
            Ok(f) => f,
            Err(error) => {
                eprintln!("{}: error: {error}", path.display());
                return ExitCode::FAILURE;
            }
        },
    };
    let start = StartInput {
        session_id: session_id.to_owned(),
        locale: locale.to_owned(),
        channel: "terminal".to_owned(),
        tz_offset_minutes: offset,
        user: Default::default(),
    };
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    // With `--now`, the clock starts there and runs at the wall clock's pace.
    let shift = start_at.map_or(0, |at| at - wall_clock());
    let clock = move || wall_clock() + shift;
    match chat(&*engine, &fixtures, start, clock, stdin, stdout) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kefu: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn wall_clock() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Reads `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM` as a local time `offset_minutes` east of UTC.
pub fn parse_local_time(text: &str, offset_minutes: i32) -> Result<Millis, String> {
    let expected =
        || format!("expected a time like 2026-01-05 or 2026-01-05T10:00, found `{text}`");
    let (date, time) = text.split_once(['T', ' ']).unwrap_or((text, "00:00"));
    let date = flows::engine::support::parse_date(date).ok_or_else(expected)?;
    let numbers: Vec<i64> = date.split('-').filter_map(|p| p.parse().ok()).collect();
    let [year, month, day] = numbers[..] else {
        return Err(expected());
    };
    let (hour, minute) = time.split_once(':').ok_or_else(expected)?;
    let hour: i64 = hour.parse().map_err(|_| expected())?;
    let minute: i64 = minute.parse().map_err(|_| expected())?;
    if !(0..24).contains(&hour) || !(0..60).contains(&minute) {
        return Err(expected());
    }
    // Days from civil (proleptic Gregorian), the inverse of `flows::engine::support::civil`.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 1440 + hour * 60 + minute) - i64::from(offset_minutes)) * 60_000)
}

/// The terminal has no reliable time zone without a tz database; `KEFU_TZ_OFFSET_MINUTES`
/// sets it (China Standard Time, +480, by default).
/// The visitor's time zone for terminal chats, minutes east of UTC: `KEFU_TZ_OFFSET_MINUTES`,
/// China Standard Time (+480) by default.
pub fn local_offset_minutes() -> i32 {
    std::env::var("KEFU_TZ_OFFSET_MINUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(480)
}

/// Plays a conversation: lines from `input` are the visitor, the bot writes to `out`.
/// Returns the final session.
pub fn chat(
    engine: &dyn Engine,
    fixtures: &Fixtures,
    start: StartInput,
    mut clock: impl FnMut() -> Millis,
    input: impl BufRead,
    mut out: impl Write,
) -> std::io::Result<Session> {
    let mut session = engine.new_session();
    writeln!(out, "kefu — {} ({HELP})", engine.flow().id)?;
    let mut lines = input.lines();
    let mut next = Some(Input::Start(start));
    loop {
        while let Some(input) = next.take() {
            let step = engine.step(&mut session, &input, clock());
            for effect in &step.effects {
                if let Some(answer) = show(&mut out, effect, fixtures)? {
                    next = Some(answer);
                }
            }
        }
        if matches!(session.waiting, Waiting::Ended { .. }) {
            return Ok(session);
        }
        write!(out, "you> ")?;
        out.flush()?;
        let Some(line) = lines.next().transpose()? else {
            writeln!(out)?;
            return Ok(session);
        };
        let line = line.trim();
        next = match command(line, &session) {
            Command::Input(input) => Some(input),
            Command::Quit => return Ok(session),
            Command::Say(text) => {
                writeln!(out, "  {text}")?;
                None
            }
        };
    }
}

enum Command {
    Input(Input),
    Say(String),
    Quit,
}

fn command(line: &str, session: &Session) -> Command {
    let mut words = line.split_whitespace();
    match words.next() {
        Some("/quit" | "/exit") => Command::Quit,
        Some("/help") => Command::Say(HELP.to_owned()),
        Some("/restart") => Command::Input(Input::Restart),
        Some("/cancel") => Command::Input(Input::Cancel),
        Some("/vars") => {
            let vars = session
                .frames
                .last()
                .map(|f| serde_json::to_string_pretty(&f.vars).unwrap_or_default());
            Command::Say(vars.unwrap_or_else(|| "(no variables yet)".into()))
        }
        Some("/timer") => match words
            .next()
            .map(str::to_owned)
            .or_else(|| session.timers.keys().next().cloned())
        {
            Some(id) => Command::Input(Input::Timer(id)),
            None => Command::Say("(no timer is armed)".into()),
        },
        Some("/handback") => Command::Input(Input::HandBack(flows::engine::HandBack {
            node: words.next().map(str::to_owned),
            vars: Default::default(),
        })),
        _ => match &session.waiting {
            Waiting::Choice { options, .. } => match options.iter().find(|o| o.id == line) {
                Some(o) => Command::Input(Input::Choice(o.id.clone())),
                None => Command::Input(Input::Text(line.to_owned())),
            },
            _ => Command::Input(Input::Text(line.to_owned())),
        },
    }
}

/// Prints one effect; a lookup is answered from the fixtures at once.
fn show(
    out: &mut impl Write,
    effect: &Effect,
    fixtures: &Fixtures,
) -> std::io::Result<Option<Input>> {
    match effect {
        Effect::Say { output, .. } => match output {
            Output::Text { text } => writeln!(out, "bot> {text}")?,
            Output::Image { url, alt } => writeln!(out, "bot> [image: {alt}] {url}")?,
            Output::Products { cards } | Output::Carousel { cards } => {
                for (i, card) in cards.iter().enumerate() {
                    let price = card
                        .price
                        .map(|p| format!(" — ¥{}", flows::value::format_number(p)))
                        .unwrap_or_default();
                    let url = card
                        .url
                        .as_deref()
                        .map(|u| format!("  {u}"))
                        .unwrap_or_default();
                    writeln!(out, "bot>   {}. {}{price}{url}", i + 1, card.title)?;
                    if let Some(subtitle) = &card.subtitle {
                        writeln!(out, "         {subtitle}")?;
                    }
                }
            }
        },
        Effect::Ask { prompt, expect, .. } => {
            writeln!(out, "bot> {prompt}")?;
            if let Expect::Choice { options } = expect {
                let buttons: Vec<String> = options
                    .iter()
                    .enumerate()
                    .map(|(i, o)| format!("[{}] {}", i + 1, o.label))
                    .collect();
                writeln!(out, "     {}", buttons.join("  "))?;
            }
        }
        Effect::Lookup(request) => {
            writeln!(
                out,
                "  (looking up {}.{}.{} …)",
                request.connector, request.entity, request.operation
            )?;
            let outcome = fixtures.answer(request);
            return Ok(Some(Input::LookupResult(LookupResult {
                request: request.request,
                outcome,
            })));
        }
        Effect::Handoff(h) => {
            let to = h
                .queue
                .as_deref()
                .or(h.team.as_deref())
                .unwrap_or("an agent");
            writeln!(
                out,
                "  (handed over to {to}: {}; type /handback to give it back to the bot)",
                h.reason
            )?;
        }
        Effect::SetTimer { id, .. } if id != flows::engine::INACTIVITY_TIMER => {
            writeln!(out, "  (timer {id} armed; type /timer to fire it now)")?;
        }
        Effect::End { outcome } => writeln!(out, "  (conversation ended: {outcome})")?,
        Effect::Error { node, message } => {
            writeln!(
                out,
                "  (flow error{}: {message})",
                node.as_deref()
                    .map(|n| format!(" at {n}"))
                    .unwrap_or_default()
            )?;
        }
        Effect::Rejected { reason } => writeln!(out, "  (not accepted: {reason})")?,
        Effect::SetTimer { .. } | Effect::CancelTimer { .. } | Effect::Trace(_) => {}
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::parse_local_time;
    use flows::engine::support::civil;

    #[test]
    fn local_times_read_back_through_civil() {
        let at = parse_local_time("2026-01-05T10:00", 480).unwrap();
        assert_eq!(at, 1_767_578_400_000);
        let c = civil(at, 480);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute),
            (2026, 1, 5, 10, 0)
        );
        assert_eq!(
            parse_local_time("2024-02-29", 0).unwrap(),
            1_709_164_800_000
        );
        assert!(parse_local_time("2026-13-01", 0).is_err());
        assert!(parse_local_time("2026-01-05T25:00", 0).is_err());
        assert!(parse_local_time("yesterday", 0).is_err());
    }
}
