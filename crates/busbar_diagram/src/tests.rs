use super::*;

#[test]
fn ids_keep_names_apart() {
    let mut ids = Ids::default();
    let a = ids.make("t", "site.added");
    let b = ids.make("t", "site_added");
    let c = ids.make("t", "site-added");
    assert_eq!(a, "t_site_2e_added");
    assert_ne!(a, b);
    assert_ne!(b, c);
    assert_ne!(a, c);
    for id in [a, b, c] {
        assert!(id.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'), "{id}");
    }
    assert_eq!(ids.make("s", "é"), "s__e9_");
}

#[test]
fn focus_parses() {
    assert_eq!(Focus::parse("service=orders"), Ok(Focus::Service("orders".into())));
    assert_eq!(Focus::parse("topic=a.b"), Ok(Focus::Topic("a.b".into())));
    assert!(Focus::parse("orders").is_err());
    assert!(Focus::parse("service=").is_err());
    assert!(Focus::parse("queue=x").is_err());
}
