use cacheman::cached;

#[cached(name = "../escape", manager = ".hidden", depends_on = "a/b")]
fn escape(n: u64) -> u64 {
    n
}

// `:` names a drive or an alternate data stream on Windows; the rule's message never listed it.
#[cached(name = "a:b")]
fn stream(n: u64) -> u64 {
    n
}

fn main() {
    escape(1);
    stream(1);
}
