//! The bounded option reader: never panics, consumes exactly the input when
//! it succeeds, and round-trips.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ppp::wire::{parse_options, Options};

fuzz_target!(|data: &[u8]| {
    let all: Vec<_> = Options::new(data).collect();
    // At most one error, and it is last.
    let errs = all.iter().filter(|r| r.is_err()).count();
    assert!(errs <= 1);
    if errs == 1 {
        assert!(all.last().unwrap().is_err());
    }
    match parse_options(data) {
        Ok(opts) => {
            let mut re = Vec::new();
            for o in &opts {
                o.emit(&mut re);
            }
            assert_eq!(re.as_slice(), data, "options must cover the input exactly");
            assert_eq!(parse_options(&re).unwrap(), opts);
            for o in &opts {
                let _ = ppp::AuthProtocol::from_option_data(o.data);
            }
        }
        Err(_) => assert_eq!(errs, 1),
    }
});
