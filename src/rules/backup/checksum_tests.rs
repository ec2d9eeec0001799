//! `backup-s3-compat-checksums`: endpoints, hosts, variables and where they are read from.

use super::tests::{GZIP, GZIP_IN_TREE, found, in_tree_cluster, object_store, plugin_cluster};
use super::*;

#[test]
fn endpoint_hosts_and_aws_detection() {
    let cases = [
        ("https://s3.eu-west-1.amazonaws.com", "s3.eu-west-1.amazonaws.com", true),
        (
            "https://s3.cn-north-1.amazonaws.com.cn/",
            "s3.cn-north-1.amazonaws.com.cn",
            true,
        ),
        ("https://bucket.s3.amazonaws.com:443/x", "bucket.s3.amazonaws.com", true),
        (
            "https://axaxnpcrorw5.compat.objectstorage.eu-frankfurt-1.oraclecloud.com",
            "axaxnpcrorw5.compat.objectstorage.eu-frankfurt-1.oraclecloud.com",
            false,
        ),
        ("http://minio.minio:9000", "minio.minio", false),
        (
            "https://0123abcd.r2.cloudflarestorage.com",
            "0123abcd.r2.cloudflarestorage.com",
            false,
        ),
        ("https://S3.AmazonAWS.com", "s3.amazonaws.com", true),
        ("https://notamazonaws.com", "notamazonaws.com", false),
        (
            "https://amazonaws.com.evil.example",
            "amazonaws.com.evil.example",
            false,
        ),
        ("minio:9000", "minio", false),
        ("http://user:pw@[::1]:9000/", "::1", false),
    ];
    for (url, host, aws) in cases {
        assert_eq!(endpoint_host(url).as_deref(), Some(host), "{url}");
        assert_eq!(is_aws_host(host), aws, "{url}");
    }
    assert_eq!(endpoint_host("https:///path"), None);
}

#[test]
fn hosts_in_messages_stay_recognisable() {
    let cases = [
        ("minio.minio.svc.cluster.local", "minio.minio.svc"),
        ("minio.minio.svc", "minio.minio.svc"),
        ("minio", "minio"),
        ("10.0.0.12", "10.0.0.12"),
        ("0123abcd.r2.cloudflarestorage.com", "0123abcd.r2.cloudflarestorage.com"),
        (
            "axaxnpcrorw5.compat.objectstorage.eu-frankfurt-1.oraclecloud.com",
            "….oraclecloud.com",
        ),
    ];
    for (host, shown) in cases {
        assert_eq!(display_host(host), shown, "{host}");
    }
}

#[test]
fn s3_compatible_stores_need_the_checksum_variables() {
    const BOTH: &str = "  instanceSidecarConfiguration:\n    env:\n      - {name: AWS_REQUEST_CHECKSUM_CALCULATION, value: when_required}\n      - {name: AWS_RESPONSE_CHECKSUM_VALIDATION, value: when_required}\n";
    const ONE: &str = "  instanceSidecarConfiguration:\n    env:\n      - {name: AWS_REQUEST_CHECKSUM_CALCULATION, value: when_required}\n";
    const WRONG: &str = "  instanceSidecarConfiguration:\n    env:\n      - {name: AWS_REQUEST_CHECKSUM_CALCULATION, value: when_supported}\n      - {name: AWS_RESPONSE_CHECKSUM_VALIDATION, valueFrom: {configMapKeyRef: {name: s3, key: v}}}\n";
    let oci = "    endpointURL: https://axaxnpcrorw5.compat.objectstorage.eu-frankfurt-1.oraclecloud.com\n";
    let minio = "    endpointURL: http://MinIO.minio:9000\n";
    let r2 = "    endpointURL: https://0123abcd.r2.cloudflarestorage.com\n";
    let aws = "    endpointURL: https://s3.eu-central-1.amazonaws.com\n";
    // (case, endpoint, env block, expected)
    let cases: Vec<(&str, &str, &str, Option<&str>)> = vec![
        ("OCI with both", oci, BOTH, None),
        (
            "OCI without env",
            oci,
            "",
            Some(
                "set AWS_REQUEST_CHECKSUM_CALCULATION and AWS_RESPONSE_CHECKSUM_VALIDATION to when_required in spec.env or the ObjectStore's sidecar env: newer AWS SDKs fail against ….oraclecloud.com without it",
            ),
        ),
        (
            "MinIO with one; the host as written",
            minio,
            ONE,
            Some(
                "set AWS_RESPONSE_CHECKSUM_VALIDATION to when_required in spec.env or the ObjectStore's sidecar env: newer AWS SDKs fail against MinIO.minio without it",
            ),
        ),
        (
            "R2 with a wrong value; valueFrom trusted",
            r2,
            WRONG,
            Some("set AWS_REQUEST_CHECKSUM_CALCULATION to when_required in spec.env or"),
        ),
        ("AWS endpoint", aws, "", None),
        ("no endpoint is AWS", "", "", None),
    ];
    for (case, endpoint, env, want) in cases {
        // The plugin: judged on the Cluster, reading its ObjectStore from the view.
        let store = object_store("retentionPolicy: 30d", &format!("{endpoint}{GZIP}"), env);
        let got = found(
            s3_compat_checksums,
            &format!("{}{store}", plugin_cluster("")),
            "Cluster/shop-pg",
            "",
        );
        match want {
            None => assert!(got.is_empty(), "{case}: {got:?}"),
            Some(w) => {
                assert_eq!(got.len(), 1, "{case}");
                assert!(got[0].contains(w), "{case}: {}", got[0]);
            }
        }
        // The ObjectStore alone is not judged: which Clusters use it decides.
        assert!(found(s3_compat_checksums, &store, "ObjectStore/shop-backups", "").is_empty());
        // The variables in the Cluster's spec.env count for the plugin's store too.
        let cluster_env = env
            .replace("  instanceSidecarConfiguration:\n    env:\n", "  env:\n")
            .replace("      - ", "    - ");
        let bare_store = object_store("retentionPolicy: 30d", &format!("{endpoint}{GZIP}"), "");
        let with_env = format!("{}{bare_store}", plugin_cluster(&cluster_env));
        assert_eq!(
            found(s3_compat_checksums, &with_env, "Cluster/shop-pg", "").len(),
            usize::from(want.is_some()),
            "{case} with the Cluster's env"
        );
        // The same store in-tree reads the Cluster's spec.env.
        let tree_store = match endpoint {
            "" => GZIP_IN_TREE.to_string(),
            e => format!("  {e}{GZIP_IN_TREE}"),
        };
        let tree = in_tree_cluster("retentionPolicy: 30d", &tree_store, &cluster_env);
        let got = found(s3_compat_checksums, &tree, "Cluster/shop-pg", "");
        assert_eq!(got.len(), usize::from(want.is_some()), "{case} in-tree: {got:?}");
        if want.is_some() {
            assert!(got[0].contains(" in spec.env: "), "{}", got[0]);
        }
    }
    // Azure and Google stores are not S3.
    let azure = object_store("retentionPolicy: 30d", GZIP, "")
        .replace("s3://bucket/shop-pg", "https://acct.blob.core.windows.net/backups")
        .replace(
            "  configuration:\n",
            "  configuration:\n    endpointURL: https://acct.blob.core.windows.net\n",
        );
    let cluster = plugin_cluster("");
    assert!(found(s3_compat_checksums, &format!("{cluster}{azure}"), "Cluster/shop-pg", "").is_empty());
    let gcs = object_store("retentionPolicy: 30d", GZIP, "")
        .replace("s3://bucket/shop-pg", "gs://bucket/shop-pg")
        .replace(
            "  configuration:\n",
            "  configuration:\n    endpointURL: https://storage.googleapis.com\n",
        );
    assert!(found(s3_compat_checksums, &format!("{cluster}{gcs}"), "Cluster/shop-pg", "").is_empty());
}

#[test]
fn the_endpoint_may_come_from_aws_endpoint_url_and_known_hosts_can_be_ignored() {
    let endpoint_env = "  env:\n    - {name: AWS_ENDPOINT_URL, value: 'https://Objects.Example.NET:9000'}\n";
    let tree = in_tree_cluster("retentionPolicy: 30d", GZIP_IN_TREE, endpoint_env);
    let got = found(s3_compat_checksums, &tree, "Cluster/shop-pg", "");
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].ends_with("newer AWS SDKs fail against Objects.Example.NET without it"),
        "{}",
        got[0]
    );
    // The plugin's sidecar env may carry it too.
    let store = object_store(
        "retentionPolicy: 30d",
        GZIP,
        "  instanceSidecarConfiguration:\n    env:\n      - {name: AWS_ENDPOINT_URL_S3, value: 'http://minio.minio:9000'}\n",
    );
    let got = found(
        s3_compat_checksums,
        &format!("{}{store}", plugin_cluster("")),
        "Cluster/shop-pg",
        "",
    );
    assert!(got.len() == 1 && got[0].contains("minio.minio"), "{got:?}");
    // ignoreEndpoints: host globs, matched whatever the case.
    for (globs, silenced) in [
        ("['*.example.net']", true),
        ("['objects.example.*']", true),
        ("['objects.example.ne?']", true),
        ("['example.net']", false),
        ("['*.example.org', 'minio.*']", false),
    ] {
        let policy = format!("rules: {{backup-s3-compat-checksums: {{ignoreEndpoints: {globs}}}}}");
        let got = found(s3_compat_checksums, &tree, "Cluster/shop-pg", &policy);
        assert_eq!(got.is_empty(), silenced, "{globs}: {got:?}");
    }
    // An explicit endpointURL wins over the variable.
    let aws = in_tree_cluster(
        "retentionPolicy: 30d",
        &format!("      endpointURL: https://s3.eu-west-1.amazonaws.com\n{GZIP_IN_TREE}"),
        endpoint_env,
    );
    assert!(found(s3_compat_checksums, &aws, "Cluster/shop-pg", "").is_empty());
}

#[test]
fn variable_names_are_shown_as_written() {
    let env = "  env:\n    - {name: aws_request_checksum_calculation, value: when_required}\n    - {name: AWS_RESPONSE_CHECKSUM_VALIDATION, value: when_required}\n";
    let tree = in_tree_cluster(
        "retentionPolicy: 30d",
        &format!("      endpointURL: http://minio:9000\n{GZIP_IN_TREE}"),
        env,
    );
    let got = found(s3_compat_checksums, &tree, "Cluster/shop-pg", "");
    assert_eq!(
        got,
        vec![
            "set AWS_REQUEST_CHECKSUM_CALCULATION (not aws_request_checksum_calculation) to when_required in spec.env: newer AWS SDKs fail against minio without it"
        ]
    );
}

#[test]
fn host_globs() {
    for (glob, host, want) in [
        ("*", "anything.example", true),
        ("*.r2.cloudflarestorage.com", "abc.r2.cloudflarestorage.com", true),
        ("*.r2.cloudflarestorage.com", "r2.cloudflarestorage.com", false),
        ("minio*", "minio.minio.svc", true),
        ("m?nio", "minio", true),
        ("m?nio", "mnio", false),
        ("a*b*c", "axxbyyc", true),
        ("a*b*c", "axxbyy", false),
        ("", "", true),
        ("", "x", false),
        // A star that must give back what it first left to the rest of the glob.
        ("*ab", "aab", true),
        ("*.minio", "s3.minio.minio", true),
        ("*a?c", "abcaxc", true),
        ("*a?c", "abcax", false),
        ("**", "", true),
        ("?*", "", false),
    ] {
        assert_eq!(glob_matches(glob, host), want, "{glob} ~ {host}");
    }
}

#[test]
fn a_variable_of_another_name_is_not_the_endpoint() {
    // Only AWS_ENDPOINT_URL(_S3) names the endpoint: without it (or endpointURL) this is AWS S3.
    let env = "  env:\n    - {name: MIRROR_URL, value: 'http://minio.minio:9000'}\n";
    let tree = in_tree_cluster("retentionPolicy: 30d", GZIP_IN_TREE, env);
    assert_eq!(
        found(s3_compat_checksums, &tree, "Cluster/shop-pg", ""),
        Vec::<String>::new()
    );
    let named = env.replace("MIRROR_URL", "AWS_ENDPOINT_URL");
    let tree = in_tree_cluster(
        "retentionPolicy: 30d",
        GZIP_IN_TREE,
        &format!("{named}    - {{name: OTHER, value: x}}\n"),
    );
    assert_eq!(found(s3_compat_checksums, &tree, "Cluster/shop-pg", "").len(), 1);
}
