use cacheman::cached;

// Every problem of one attribute is reported in one compile.
#[cached(nme = "x", capacity = 0, result, option)]
fn many<T: Clone>(value: T, text: impl AsRef<str>) -> Result<T, ()> {
    let _ = text;
    Ok(value)
}

fn main() {}
