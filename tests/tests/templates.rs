//! The SAM template of every example: the settings a Kinesis consumer needs, each with a
//! comment saying why, least-privilege IAM, alarms and outputs. (`cfn-lint` checks the
//! templates' validity under the test command.)

use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

fn templates() -> Vec<PathBuf> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut templates: Vec<PathBuf> = std::fs::read_dir(examples)
        .unwrap()
        .map(|entry| entry.unwrap().path().join("template.yaml"))
        .filter(|path| path.is_file())
        .collect();
    templates.sort();
    assert!(!templates.is_empty());
    templates
}

fn load(path: &Path) -> (String, Yaml) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut documents = YamlLoader::load_from_str(&text).unwrap();
    (text, documents.remove(0))
}

fn resources_of_type<'a>(template: &'a Yaml, kind: &str) -> Vec<&'a Yaml> {
    named_resources_of_type(template, kind).into_iter().map(|(_, resource)| resource).collect()
}

/// The resources of a type, with their logical ids.
fn named_resources_of_type<'a>(template: &'a Yaml, kind: &str) -> Vec<(&'a str, &'a Yaml)> {
    template["Resources"]
        .as_hash()
        .unwrap()
        .iter()
        .filter(|(_, resource)| resource["Type"].as_str() == Some(kind))
        .map(|(id, resource)| (id.as_str().unwrap(), resource))
        .collect()
}

/// The Kinesis event sources of a function.
fn kinesis_events(function: &Yaml) -> Vec<&Yaml> {
    function["Properties"]["Events"]
        .as_hash()
        .into_iter()
        .flat_map(|events| events.values())
        .filter(|event| event["Type"].as_str() == Some("Kinesis"))
        .collect()
}

/// The IAM actions the sinks' rustdoc lists (SQS, SNS, S3), and nothing more; the examples'
/// own downstream writes use the same actions.
const SINK_ACTIONS: &[&str] = &["sqs:SendMessage", "sns:Publish", "s3:PutObject"];

/// The longest `MaximumRecordAgeInSeconds` a template may set: half of a stream's default
/// retention (24 h). Lambda gives up on a batch at that age and sends its position to the
/// on-failure destination; the other half of the retention is the time left to re-read it
/// from the stream.
const MAX_RECORD_AGE_SECONDS: i64 = 43_200;

#[test]
fn every_function_runs_rust_on_arm64_al2023_built_by_cargo_lambda() {
    for path in templates() {
        let (_, template) = load(&path);
        let globals = &template["Globals"]["Function"];
        for function in resources_of_type(&template, "AWS::Serverless::Function") {
            let properties = &function["Properties"];
            let runtime = properties["Runtime"].as_str().or(globals["Runtime"].as_str());
            assert_eq!(runtime, Some("provided.al2023"), "{path:?}");
            let architectures = if properties["Architectures"].is_badvalue() {
                &globals["Architectures"]
            } else {
                &properties["Architectures"]
            };
            assert_eq!(architectures[0].as_str(), Some("arm64"), "{path:?}");
            assert_eq!(
                function["Metadata"]["BuildMethod"].as_str(),
                Some("rust-cargolambda"),
                "{path:?}"
            );
        }
    }
}

#[test]
fn every_event_source_mapping_has_the_settings_a_kinesis_consumer_needs() {
    for path in templates() {
        let (text, template) = load(&path);
        assert!(
            template["Parameters"]["StreamArn"]["Type"].as_str().is_some(),
            "{path:?}: a StreamArn parameter"
        );
        let mut mappings = 0;
        for function in resources_of_type(&template, "AWS::Serverless::Function") {
            for event in kinesis_events(function) {
                mappings += 1;
                let properties = &event["Properties"];
                assert_eq!(
                    properties["FunctionResponseTypes"][0].as_str(),
                    Some("ReportBatchItemFailures"),
                    "{path:?}"
                );
                assert_eq!(
                    properties["BisectBatchOnFunctionError"].as_bool(),
                    Some(true),
                    "{path:?}"
                );
                assert!(properties["MaximumRetryAttempts"].as_i64().is_some(), "{path:?}");
                let age = properties["MaximumRecordAgeInSeconds"]
                    .as_i64()
                    .expect("MaximumRecordAgeInSeconds");
                assert!(
                    (60..=MAX_RECORD_AGE_SECONDS).contains(&age),
                    "{path:?}: MaximumRecordAgeInSeconds {age} leaves less than half the \
                     stream's default retention to re-read a discarded batch"
                );
                assert!(
                    ["LATEST", "TRIM_HORIZON", "AT_TIMESTAMP"]
                        .contains(&properties["StartingPosition"].as_str().unwrap_or("")),
                    "{path:?}: a StartingPosition chosen"
                );
                let on_failure = &properties["DestinationConfig"]["OnFailure"];
                assert!(
                    on_failure["Destination"].as_str().is_some(),
                    "{path:?}: an on-failure destination"
                );
                assert_eq!(
                    properties["Stream"].as_str(),
                    Some("StreamArn"),
                    "{path:?}: the stream comes from the parameter"
                );
            }
        }
        assert!(mappings >= 1, "{path:?}: a Kinesis event source mapping");
        for key in [
            "StartingPosition",
            "FunctionResponseTypes",
            "BisectBatchOnFunctionError",
            "MaximumRetryAttempts",
            "DestinationConfig",
            "ParallelizationFactor",
            "MaximumBatchingWindowInSeconds",
        ] {
            assert_commented(&text, key, &path);
        }
        assert!(
            text.contains("ParallelizationFactor:")
                || text.contains("MaximumBatchingWindowInSeconds:"),
            "{path:?}: a parallelization factor or a batching window, as the job allows"
        );
    }
}

/// Every occurrence of the setting `key` is preceded by a comment (directly, or as part of
/// a group of settings under one comment).
fn assert_commented(text: &str, key: &str, path: &Path) {
    let lines: Vec<&str> = text.lines().collect();
    for (at, _) in lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.trim_start().starts_with(&format!("{key}:")))
    {
        let commented =
            lines[..at].iter().rev().take(3).any(|line| line.trim_start().starts_with('#'));
        assert!(commented, "{path:?}: `{key}` on line {} has no comment saying why", at + 1);
    }
}

/// A KPL aggregate travels under the partition key of its first user record, so with a
/// parallelization factor above 1 the user records of one key, packed in aggregates of
/// different keys, could run in two lanes at once. A template whose stream carries
/// aggregates (its description says so) reads one batch per shard at a time.
#[test]
fn a_stream_of_kpl_aggregates_is_read_one_batch_per_shard_at_a_time() {
    let mut aggregated = Vec::new();
    for path in templates() {
        let (_, template) = load(&path);
        if !template["Description"].as_str().unwrap_or("").contains("KPL") {
            continue;
        }
        aggregated.push(path.clone());
        for function in resources_of_type(&template, "AWS::Serverless::Function") {
            for event in kinesis_events(function) {
                let factor = event["Properties"]["ParallelizationFactor"].as_i64().unwrap_or(1);
                assert_eq!(
                    factor, 1,
                    "{path:?}: KPL aggregates need a parallelization factor of 1"
                );
            }
        }
    }
    assert!(
        aggregated.iter().any(|path| path.ends_with("log-filter/template.yaml")),
        "log-filter's stream carries KPL aggregates: {aggregated:?}"
    );
}

#[test]
fn iam_grants_only_what_the_sinks_document() {
    for path in templates() {
        let (_, template) = load(&path);
        for function in resources_of_type(&template, "AWS::Serverless::Function") {
            for policy in function["Properties"]["Policies"].as_vec().into_iter().flatten() {
                for statement in policy["Statement"].as_vec().into_iter().flatten() {
                    let actions: Vec<&str> = match &statement["Action"] {
                        Yaml::String(action) => vec![action],
                        Yaml::Array(actions) => actions.iter().filter_map(Yaml::as_str).collect(),
                        other => panic!("{path:?}: unexpected Action {other:?}"),
                    };
                    for action in actions {
                        assert!(
                            SINK_ACTIONS.contains(&action),
                            "{path:?}: {action} is more than a sink needs"
                        );
                    }
                    assert_ne!(
                        statement["Resource"].as_str(),
                        Some("*"),
                        "{path:?}: a resource, not *"
                    );
                }
            }
        }
    }
}

#[test]
fn dead_letters_and_failure_records_are_encrypted_at_rest() {
    for path in templates() {
        let (_, template) = load(&path);
        for (id, queue) in named_resources_of_type(&template, "AWS::SQS::Queue") {
            let properties = &queue["Properties"];
            assert!(
                properties["SqsManagedSseEnabled"].as_bool() == Some(true)
                    || properties["KmsMasterKeyId"].as_str().is_some(),
                "{path:?}: {id} is encrypted"
            );
        }
        for (id, topic) in named_resources_of_type(&template, "AWS::SNS::Topic") {
            assert!(
                topic["Properties"]["KmsMasterKeyId"].as_str().is_some(),
                "{path:?}: {id} is encrypted"
            );
        }
        for (id, bucket) in named_resources_of_type(&template, "AWS::S3::Bucket") {
            let rules =
                &bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"];
            assert!(
                rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"].as_str().is_some(),
                "{path:?}: {id} is encrypted"
            );
        }
    }
}

#[test]
fn every_template_alarms_on_iterator_age_and_dead_letters_and_has_outputs() {
    for path in templates() {
        let (_, template) = load(&path);
        let alarms = resources_of_type(&template, "AWS::CloudWatch::Alarm");
        let metric = |name: &str| {
            alarms.iter().find(|alarm| alarm["Properties"]["MetricName"].as_str() == Some(name))
        };
        let iterator_age = metric("IteratorAge").expect("an IteratorAge alarm");
        assert_eq!(iterator_age["Properties"]["Statistic"].as_str(), Some("Maximum"), "{path:?}");
        assert!(metric("DeadLettered").is_some(), "{path:?}: a dead-letter alarm");
        assert!(!template["Outputs"].as_hash().unwrap().is_empty(), "{path:?}");
    }
}
