//! Hostens' spend record from the document's own examples: domains and certificates
//! (issue 23.6) parsed as listed and detailed, nothing personal or secret kept.

use usage_archiver::providers::hostens;

use crate::common::*;

/// The documented domain and certificate listings and details parse into the rows the
/// fetch plan compares and the snapshots kept; a certificate keeps no CSR, contacts,
/// organization or e-mail; the documented certificate details (not JSON: `(...)` and a
/// trailing comma) are a clear error.
// See: issue 23.6
#[test]
fn documented_domains_and_certificates() {
    let domains =
        hostens::parse_domains(fixture("hostens", "domain__list.json").as_bytes()).unwrap();
    assert_eq!(domains.len(), 1);
    assert_eq!(
        (domains[0].id.as_str(), domains[0].label.as_deref()),
        ("47", Some("testname.com"))
    );
    assert!(!domains[0].settled);
    assert_eq!(domains[0].row["recurring_amount"], 15.0);
    assert_eq!(domains[0].row["status"], "Active");
    let domain = hostens::parse_domain(
        "47",
        fixture("hostens", "domain_details__documented.json").as_bytes(),
    )
    .unwrap();
    assert_eq!(
        (&domain["recurring_amount"], &domain["expires"]),
        (&serde_json::json!(15.0), &serde_json::json!("2017-12-30"))
    );
    let err = hostens::parse_domain(
        "48",
        fixture("hostens", "domain_details__documented.json").as_bytes(),
    )
    .unwrap_err();
    assert!(err.contains("asked for details 48"), "{err}");

    let certificates =
        hostens::parse_certificates(fixture("hostens", "certificate__list.json").as_bytes())
            .unwrap();
    assert_eq!(
        certificates[0].label.as_deref(),
        Some("Comodo InstantSSL (examplename.com)")
    );
    assert_eq!(certificates[0].row["cert_expires"], "2017-12-30 13:43:12");
    let kept = hostens::parse_certificate(
        "300",
        fixture("hostens", "certificate_details__fixed.json").as_bytes(),
    )
    .unwrap();
    for personal in ["csr", "contacts", "organization", "cert_email"] {
        assert!(kept.get(personal).is_none(), "{personal} kept: {kept}");
    }
    assert_eq!(kept["total"], 27.85);
    let err = hostens::parse_certificate(
        "300",
        fixture("hostens", "certificate_details__documented.json").as_bytes(),
    )
    .unwrap_err();
    assert!(!err.is_empty() && !err.contains("Mary"), "{err}");
}
