//! How the command prints: aligned tables, human units, colour on a terminal only, and the
//! parsers of sizes and ages on the command line.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, SystemTime};

/// Prints `value` as pretty JSON and a newline.
pub(crate) fn print_json(out: &mut dyn Write, value: &serde_json::Value) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::other)?;
    writeln!(out)
}

/// Whether to colour what is printed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    colour: bool,
}

impl Style {
    /// Colour only for tables on a terminal, and never when `NO_COLOR` is set
    /// (<https://no-color.org>).
    pub(crate) fn for_output(json: bool) -> Self {
        let colour = !json && io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Style { colour }
    }

    /// `text` in red (problems) on a terminal.
    pub(crate) fn bad(&self, text: &str) -> String {
        self.paint("31", text)
    }

    /// `text` in green on a terminal.
    pub(crate) fn good(&self, text: &str) -> String {
        self.paint("32", text)
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// Prints `rows` under `header`, each column as wide as its widest cell (counted in chars,
/// colour codes excluded); columns listed in `right` are right-aligned (numbers).
pub(crate) fn table(
    out: &mut dyn Write,
    header: &[&str],
    rows: &[Vec<String>],
    right: &[usize],
) -> io::Result<()> {
    let width = |cell: &str| visible_len(cell);
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(width(cell));
        }
    }
    let line = |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            let pad = " ".repeat(widths[i] - width(cell));
            if i > 0 {
                text.push_str("  ");
            }
            if right.contains(&i) {
                text.push_str(&pad);
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&pad);
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, &mut header.iter().copied())?;
    for row in rows {
        line(out, &mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

fn visible_len(text: &str) -> usize {
    let mut len = 0;
    let mut in_escape = false;
    for c in text.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => len += 1,
        }
    }
    len
}

/// `bytes` in binary units: `812 B`, `4.0 KiB`, `1.5 GiB`.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// How long ago `time` was: `just now`, `42s ago`, `5m ago`, `3h ago`, `12d ago`.
pub(crate) fn ago(time: Option<SystemTime>, now: SystemTime) -> String {
    let Some(time) = time else {
        return "-".into();
    };
    let Ok(age) = now.duration_since(time) else {
        return "in the future".into();
    };
    let secs = age.as_secs();
    match secs {
        0 => "just now".into(),
        1..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86_400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// Unix milliseconds of `time`, for JSON.
pub(crate) fn unix_ms(time: Option<SystemTime>) -> Option<u64> {
    time?
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as u64)
}

/// Parses an age: a number and a unit, `s`, `m`, `h`, `d` or `w`.
pub(crate) fn parse_age(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit: write it like 90s, 15m, 12h, 7d or 2w"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a number: write it like 7d"))?;
    let seconds = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        other => return Err(format!("unknown unit `{other}`: use s, m, h, d or w")),
    };
    number
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is too long a time"))
}

/// Parses a size: bytes, or a number and a unit (`KiB`, `MiB`, `GiB`, `TiB`, or the decimal
/// `KB`, `MB`, `GB`, `TB`; case does not matter).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a number: write it like 1GiB"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kib" | "k" => 1024.0,
        "mib" | "m" => 1024.0 * 1024.0,
        "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        "tib" | "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        other => {
            return Err(format!(
                "unknown unit `{other}`: use B, KiB, MiB, GiB or TiB"
            ));
        }
    };
    let bytes = number * factor;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("`{text}` is not a size in bytes"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ages_parse_and_print() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5 KiB"), Ok(1536));
        assert_eq!(parse_size("2MB"), Ok(2_000_000));
        assert_eq!(parse_size("17"), Ok(17));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_age("7").is_err());
        assert!(parse_age("7y").is_err());
        assert!(parse_age("99999999999999999999w").is_err());
        assert_eq!(size(812), "812 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 << 30), "3.0 GiB");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(ago(Some(now - Duration::from_secs(300)), now), "5m ago");
        assert_eq!(ago(None, now), "-");
    }

    #[test]
    fn tables_align_columns() {
        let mut out = Vec::new();
        let rows = vec![
            vec!["a".to_owned(), "1".to_owned()],
            vec!["long".to_owned(), "100".to_owned()],
        ];
        table(&mut out, &["NAME", "N"], &rows, &[1]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NAME    N\na       1\nlong  100\n"
        );
    }
}
