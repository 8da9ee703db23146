//! RFC 3339 timestamps parsed to Unix milliseconds without allocating.
//!
//! Date clauses parse a context attribute on every evaluation; this small parser keeps that
//! free of allocation and of a date-time dependency in the pure core.

/// Parses `YYYY-MM-DD`, or `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, to Unix milliseconds.
/// A date alone means midnight UTC.
pub(crate) fn parse_rfc3339_millis(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = bytes.get(from..from + len)?;
        part.iter().try_fold(0i64, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0')))
    };
    let expect = |at: usize, byte: u8| bytes.get(at) == Some(&byte);

    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    if !expect(4, b'-') || !expect(7, b'-') || !(1..=12).contains(&month) {
        return None;
    }
    if day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if bytes.len() == 10 {
        return Some(days * 86_400_000);
    }
    if !matches!(bytes.get(10), Some(b'T' | b't' | b' ')) || !expect(13, b':') || !expect(16, b':') {
        return None;
    }
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    if expect(at, b'.') {
        at += 1;
        let start = at;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            // Only the first three fraction digits matter at millisecond precision.
            if at - start < 3 {
                millis += i64::from(bytes[at] - b'0') * [100, 10, 1][at - start];
            }
            at += 1;
        }
        if at == start {
            return None;
        }
    }
    let offset_minutes = match bytes.get(at) {
        Some(b'Z' | b'z') if bytes.len() == at + 1 => 0,
        Some(&sign @ (b'+' | b'-')) if bytes.len() == at + 6 && expect(at + 3, b':') => {
            let (oh, om) = (digits(at + 1, 2)?, digits(at + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let minutes = oh * 60 + om;
            if sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339_millis as parse;

    #[test]
    fn matches_known_instants() {
        // Values from `date -u -d ... +%s`.
        assert_eq!(parse("1970-01-01"), Some(0));
        assert_eq!(parse("2024-02-29T12:00:00Z"), Some(1_709_208_000_000));
        assert_eq!(parse("2000-03-01T00:00:00.250Z"), Some(951_868_800_250));
        assert_eq!(parse("2024-02-29T13:30:00+01:30"), Some(1_709_208_000_000));
        assert_eq!(parse("1969-12-31T23:59:59Z"), Some(-1000));
    }

    #[test]
    fn refuses_impossible_dates_and_bad_syntax() {
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-04-31",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.Z",
            "24-01-01",
            "2024-1-01",
            "yesterday",
            "2024-01-01T00:00:00+0100",
        ] {
            assert_eq!(parse(bad), None, "{bad} should be refused");
        }
    }
}
