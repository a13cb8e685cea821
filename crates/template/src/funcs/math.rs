//! Sprig's integer and float math, conversions, and semver constraints.

use super::{FnErr, FnResult, P, Table, int, reg, s, to_f64, to_i64};
use crate::value::Value;

/// Sprig's integer math returns int64.
fn i(v: i64) -> FnResult {
    Ok(Value::I64(v))
}

fn f(v: f64) -> FnResult {
    Ok(Value::Float(v))
}

/// shopspring/decimal as Sprig's float math uses it: each float taken at its shortest decimal
/// form, added, subtracted and multiplied exactly, divided to 16 decimal places (half away from
/// zero), then read back as the nearest float64. Falls back to float arithmetic past i128.
#[derive(Clone, Copy)]
struct Dec {
    m: i128,
    e: i32,
}

impl Dec {
    fn from_f64(f: f64) -> Option<Dec> {
        if !f.is_finite() {
            return None;
        }
        if f == 0.0 {
            return Some(Dec { m: 0, e: 0 });
        }
        let s = format!("{:e}", f);
        let (mant, exp) = s.split_once('e')?;
        let neg = mant.starts_with('-');
        let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
        let frac_len = mant.split_once('.').map_or(0, |(_, fr)| fr.len()) as i32;
        let m: i128 = digits.parse().ok()?;
        Some(Dec {
            m: if neg { -m } else { m },
            e: exp.parse::<i32>().ok()? - frac_len,
        })
    }

    fn scaled(self, e: i32) -> Option<i128> {
        let k = u32::try_from(self.e - e).ok()?;
        self.m.checked_mul(10i128.checked_pow(k)?)
    }

    fn add(self, o: Dec) -> Option<Dec> {
        let e = self.e.min(o.e);
        Some(Dec {
            m: self.scaled(e)?.checked_add(o.scaled(e)?)?,
            e,
        })
    }

    fn mul(self, o: Dec) -> Option<Dec> {
        Some(Dec {
            m: self.m.checked_mul(o.m)?,
            e: self.e + o.e,
        })
    }

    fn div(self, o: Dec) -> Option<Dec> {
        if o.m == 0 {
            return None;
        }
        // round(self / o * 10^16)
        let k = self.e - o.e + 16;
        let (num, den) = if k >= 0 {
            (self.m.checked_mul(10i128.checked_pow(k as u32)?)?, o.m)
        } else {
            (self.m, o.m.checked_mul(10i128.checked_pow((-k) as u32)?)?)
        };
        let q = num / den;
        let r = num % den;
        let away = (r.abs() * 2) >= den.abs();
        let q = if away {
            if (num < 0) != (den < 0) { q - 1 } else { q + 1 }
        } else {
            q
        };
        Some(Dec { m: q, e: -16 })
    }

    fn to_f64(self) -> f64 {
        format!("{}e{}", self.m, self.e).parse().unwrap_or(f64::NAN)
    }
}

#[derive(Clone, Copy)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

/// execDecimalOp.
fn dec_op(first: f64, rest: &[f64], op: Op) -> f64 {
    let exact = || -> Option<f64> {
        let mut acc = Dec::from_f64(first)?;
        for &x in rest {
            let d = Dec::from_f64(x)?;
            acc = match op {
                Op::Add => acc.add(d)?,
                Op::Sub => acc.add(Dec { m: -d.m, e: d.e })?,
                Op::Mul => acc.mul(d)?,
                Op::Div => acc.div(d)?,
            };
        }
        Some(acc.to_f64())
    };
    exact().unwrap_or_else(|| {
        rest.iter().fold(first, |a, &b| match op {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::Mul => a * b,
            Op::Div => a / b,
        })
    })
}

pub(super) fn register(t: &mut Table) {
    use P::*;
    reg(t, "add", &[], Some(Any), |_, a| {
        i(a.iter().map(to_i64).fold(0i64, i64::wrapping_add))
    });
    reg(t, "add1", &[Any], None, |_, a| {
        i(to_i64(&a[0]).wrapping_add(1))
    });
    reg(t, "sub", &[Any, Any], None, |_, a| {
        i(to_i64(&a[0]).wrapping_sub(to_i64(&a[1])))
    });
    reg(t, "mul", &[Any], Some(Any), |_, a| {
        i(a.iter().map(to_i64).fold(1i64, i64::wrapping_mul))
    });
    reg(t, "div", &[Any, Any], None, |_, a| {
        let d = to_i64(&a[1]);
        if d == 0 {
            return Err("runtime error: integer divide by zero".into());
        }
        i(to_i64(&a[0]).wrapping_div(d))
    });
    reg(t, "mod", &[Any, Any], None, |_, a| {
        let d = to_i64(&a[1]);
        if d == 0 {
            return Err("runtime error: integer divide by zero".into());
        }
        i(to_i64(&a[0]).wrapping_rem(d))
    });
    for name in ["max", "biggest"] {
        reg(t, name, &[Any], Some(Any), |_, a| {
            i(a.iter().map(to_i64).max().unwrap_or(0))
        });
    }
    reg(t, "min", &[Any], Some(Any), |_, a| {
        i(a.iter().map(to_i64).min().unwrap_or(0))
    });
    reg(t, "addf", &[], Some(Any), |_, a| {
        let v: Vec<f64> = a.iter().map(to_f64).collect();
        f(dec_op(0.0, &v, Op::Add))
    });
    reg(t, "add1f", &[Any], None, |_, a| {
        f(dec_op(to_f64(&a[0]), &[1.0], Op::Add))
    });
    reg(t, "subf", &[Any], Some(Any), |_, a| {
        let v: Vec<f64> = a[1..].iter().map(to_f64).collect();
        f(dec_op(to_f64(&a[0]), &v, Op::Sub))
    });
    reg(t, "mulf", &[Any], Some(Any), |_, a| {
        let v: Vec<f64> = a[1..].iter().map(to_f64).collect();
        f(dec_op(to_f64(&a[0]), &v, Op::Mul))
    });
    reg(t, "divf", &[Any], Some(Any), |_, a| {
        let v: Vec<f64> = a[1..].iter().map(to_f64).collect();
        if v.contains(&0.0) {
            return Err("decimal division by 0".into());
        }
        f(dec_op(to_f64(&a[0]), &v, Op::Div))
    });
    reg(t, "maxf", &[Any], Some(Any), |_, a| {
        f(a.iter().map(to_f64).fold(f64::NEG_INFINITY, f64::max))
    });
    reg(t, "minf", &[Any], Some(Any), |_, a| {
        f(a.iter().map(to_f64).fold(f64::INFINITY, f64::min))
    });
    reg(t, "ceil", &[Any], None, |_, a| f(to_f64(&a[0]).ceil()));
    reg(t, "floor", &[Any], None, |_, a| f(to_f64(&a[0]).floor()));
    reg(t, "round", &[Any, Int], Some(Float), |_, a| {
        let round_on = match a.get(2) {
            Some(Value::Float(x)) => *x,
            _ => 0.5,
        };
        let val = to_f64(&a[0]);
        let pow = 10f64.powf(int(&a, 1) as f64);
        let digit = pow * val;
        let frac = digit.fract();
        let r = if frac >= round_on {
            digit.ceil()
        } else {
            digit.floor()
        };
        f(r / pow)
    });
    reg(t, "int", &[Any], None, |_, a| Ok(Value::Int(to_i64(&a[0]))));
    reg(t, "int64", &[Any], None, |_, a| i(to_i64(&a[0])));
    reg(t, "float64", &[Any], None, |_, a| f(to_f64(&a[0])));
    reg(t, "atoi", &[Str], None, |_, a| {
        let v = s(&a, 0);
        let body = v.strip_prefix(['+', '-']).unwrap_or(&v);
        if body.is_empty() || !body.chars().all(|c| c.is_ascii_digit()) {
            return i(0);
        }
        i(v.parse::<i64>().unwrap_or(0))
    });
    reg(t, "toDecimal", &[Any], None, |_, a| {
        i(i64::from_str_radix(&a[0].to_go_string(), 8).unwrap_or(0))
    });
    reg(t, "semver", &[Str], None, |e, a| {
        super::text::semver_value(&s(&a, 0), e.set.options.helm)
    });
    reg(t, "semverCompare", &[Str, Str], None, |e, a| {
        let v = super::text::parse_semver(&s(&a, 1))
            .ok_or_else(|| super::text::invalid_semver(e.set.options.helm))?;
        Ok(Value::Bool(constraint_matches(&s(&a, 0), &v)?))
    });
}

#[derive(Clone, Copy)]
struct Partial {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
}

fn parse_partial(v: &str) -> Option<(Partial, semver::Prerelease)> {
    let v = v.trim().strip_prefix('v').unwrap_or(v.trim());
    let (core, pre) = match v.find('-') {
        Some(i) => (&v[..i], semver::Prerelease::new(&v[i + 1..]).ok()?),
        None => (v.split('+').next().unwrap_or(v), semver::Prerelease::EMPTY),
    };
    let core = core.split('+').next().unwrap_or(core);
    let mut parts = core.split('.');
    let mut next = || -> Option<Option<u64>> {
        match parts.next() {
            None => Some(None),
            Some("x" | "X" | "*") => Some(None),
            Some(n) => n.parse::<u64>().ok().map(Some),
        }
    };
    let p = Partial {
        major: next()?,
        minor: next()?,
        patch: next()?,
    };
    if parts.next().is_some() {
        return None;
    }
    Some((p, pre))
}

fn ver(p: Partial, pre: &semver::Prerelease) -> semver::Version {
    let mut v = semver::Version::new(
        p.major.unwrap_or(0),
        p.minor.unwrap_or(0),
        p.patch.unwrap_or(0),
    );
    v.pre = pre.clone();
    v
}

/// Masterminds/semver v3 constraint check (`>=1.19-0`, `^1.2`, `~1.2.3`, `1.x`, `a - b`, `||`).
pub(crate) fn constraint_matches(c: &str, v: &semver::Version) -> Result<bool, FnErr> {
    let improper = || FnErr::Msg(format!("improper constraint: {c}"));
    for group in c.split("||") {
        let norm = regex_lite_join(group);
        let mut ok = true;
        let toks: Vec<&str> = norm.split([',', ' ']).filter(|t| !t.is_empty()).collect();
        let mut idx = 0;
        while idx < toks.len() {
            let tok = toks[idx];
            // hyphen range
            if toks.get(idx + 1) == Some(&"-") && idx + 2 < toks.len() {
                let (lo, lp) = parse_partial(tok).ok_or_else(improper)?;
                let (hi, hp) = parse_partial(toks[idx + 2]).ok_or_else(improper)?;
                ok &= check(">=", lo, &lp, v) && check("<=", hi, &hp, v);
                idx += 3;
                continue;
            }
            let op_len = tok
                .find(|ch: char| ch.is_ascii_alphanumeric() || ch == '*')
                .ok_or_else(improper)?;
            let (op, rest) = tok.split_at(op_len);
            let (p, pre) = parse_partial(rest).ok_or_else(improper)?;
            if !matches!(
                op,
                "" | "=" | "!=" | ">" | "<" | ">=" | "=>" | "<=" | "=<" | "~" | "~>" | "^"
            ) {
                return Err(improper());
            }
            ok &= check(op, p, &pre, v);
            idx += 1;
        }
        if ok {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Glues `>= 1.2` into `>=1.2` so tokens split on blanks.
fn regex_lite_join(s: &str) -> String {
    let mut out = String::new();
    let mut pending_op = false;
    for ch in s.trim().chars() {
        if ch == ' ' && pending_op {
            continue;
        }
        pending_op = matches!(ch, '>' | '<' | '=' | '~' | '^' | '!');
        out.push(ch);
    }
    out
}

fn check(op: &str, p: Partial, pre: &semver::Prerelease, v: &semver::Version) -> bool {
    // a prerelease version only satisfies constraints that carry a prerelease themselves
    if !v.pre.is_empty() && pre.is_empty() {
        return false;
    }
    let c = ver(p, pre);
    let dirty = p.minor.is_none() || p.patch.is_none() || p.major.is_none();
    let base = semver::Version::new(v.major, v.minor, v.patch);
    match op {
        "" | "=" => {
            if dirty {
                p.major.is_none_or(|m| m == v.major)
                    && p.minor.is_none_or(|m| m == v.minor)
                    && p.patch.is_none_or(|m| m == v.patch)
            } else {
                *v == c
            }
        }
        "!=" => !check("=", p, pre, v),
        ">" => {
            if dirty {
                match (p.major, p.minor) {
                    (None, _) => false,
                    (Some(ma), None) => v.major > ma,
                    (Some(ma), Some(mi)) => v.major > ma || (v.major == ma && v.minor > mi),
                }
            } else {
                *v > c
            }
        }
        ">=" | "=>" => *v >= c,
        "<" => *v < c,
        "<=" | "=<" => {
            if dirty {
                let upper = match (p.major, p.minor) {
                    (None, _) => return true,
                    (Some(ma), None) => semver::Version::new(ma + 1, 0, 0),
                    (Some(ma), Some(mi)) => semver::Version::new(ma, mi + 1, 0),
                };
                base < upper
            } else {
                *v <= c
            }
        }
        "~" | "~>" => {
            if *v < c {
                return false;
            }
            let upper = match (p.major, p.minor) {
                (None, _) => return true,
                (Some(ma), None) => semver::Version::new(ma + 1, 0, 0),
                (Some(ma), Some(mi)) => semver::Version::new(ma, mi + 1, 0),
            };
            base < upper
        }
        "^" => {
            if *v < c {
                return false;
            }
            let upper = match (p.major, p.minor, p.patch) {
                (None, ..) => return true,
                (Some(0), Some(0), Some(pa)) => semver::Version::new(0, 0, pa + 1),
                (Some(0), Some(mi), _) if mi > 0 || p.patch.is_none() => {
                    semver::Version::new(0, mi + 1, 0)
                }
                (Some(ma), ..) => semver::Version::new(ma + 1, 0, 0),
            };
            base < upper
        }
        _ => false,
    }
}
