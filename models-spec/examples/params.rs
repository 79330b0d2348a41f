//! Prints every parameter name and shape of an architecture, one per line: `NAME SHAPE`.
//!
//! `cargo run -p fer-models-spec --example params -- resnet50 7`

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(arch), Some(n)) = (args.first(), args.get(1)) else {
        eprintln!("usage: params ARCH NUM_CLASSES");
        std::process::exit(2);
    };
    let cfg = match (arch.parse(), n.parse()) {
        (Ok(a), Ok(n)) => fer_models_spec::ArchConfig::new(a, n),
        _ => {
            eprintln!("unknown architecture or bad class count");
            std::process::exit(2);
        }
    };
    match fer_models_spec::spec(&cfg) {
        Ok(g) => {
            for p in g.params() {
                println!("{} {:?}", p.name, p.shape);
            }
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
}
