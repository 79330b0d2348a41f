//! Flag values that the library also spells out for its own messages and reports
//! (`Tta::name`, `ExecutionProvider::name`) are exactly the values the flags accept: the
//! library's `FromStr`, or clap's `ValueEnum` (derived behind fer-infer-lib's `clap` feature,
//! which this binary turns on).

use clap::ValueEnum;
use fer_infer::backend::ExecutionProvider;
use fer_infer::eval::Tta;

#[test]
fn the_library_names_of_tta_and_the_execution_provider_are_the_flag_values() {
    for t in Tta::ALL {
        assert_eq!(t.name().parse::<Tta>().unwrap(), t);
    }
    let e = "rotate".parse::<Tta>().unwrap_err().to_string();
    assert!(e.contains("`rotate` (expected none, flip or ten-crop)"), "{e}");
    for ep in ExecutionProvider::value_variants() {
        assert_eq!(ep.to_possible_value().unwrap().get_name(), ep.name());
    }
}
