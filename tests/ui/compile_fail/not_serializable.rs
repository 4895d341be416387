use cacheman::cached;

#[derive(Clone)]
struct Report {
    lines: Vec<String>,
}

#[cached]
fn report(id: u32) -> Report {
    Report { lines: vec![id.to_string()] }
}

fn main() {
    let _ = report(1).lines;
}
