//! The SAM template of every example: the settings a Kinesis consumer needs, each with a
//! comment saying why; a role of each function's own, scoped to its resources; alarms that
//! fire when a shard stalls, sent to a topic; encrypted dead letters; a dashboard whose
//! metrics are the ones the runtime and AWS publish; and outputs. (`cfn-lint` checks the
//! templates' validity under the test command.)
//!
//! `yaml_rust2` drops CloudFormation's short-form tags and keeps their values: `!Ref X`
//! reads as `"X"`, `!GetAtt X.Arn` as `"X.Arn"`, `!Sub "..."` as its string.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kinesis_processor::testing::TestBatch;
use kinesis_processor::{kinesis_processor, Chunk, ChunkError, RecordError};
use serde_json::Value;
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

fn ids_of_type<'a>(template: &'a Yaml, kind: &str) -> BTreeSet<&'a str> {
    named_resources_of_type(template, kind).into_iter().map(|(id, _)| id).collect()
}

/// A string or a list of strings (an IAM `Action` or `Resource`, `AlarmActions`).
fn strings(value: &Yaml) -> Vec<&str> {
    match value {
        Yaml::String(one) => vec![one.as_str()],
        Yaml::Array(many) => many.iter().map(|item| item.as_str().expect("a string")).collect(),
        other => panic!("expected a string or a list of strings, found {other:?}"),
    }
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

/// The on-failure destination of a Kinesis event source, as written (`!GetAtt Q.Arn`).
fn on_failure_destination(event: &Yaml) -> &str {
    event["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
        .as_str()
        .expect("an on-failure destination")
}

/// What Lambda's event source mapping calls on a stream it polls (Lambda's developer guide,
/// "Process Amazon Kinesis Data Streams records with Lambda"). `kinesis:ListStreams` is not
/// among them, and it cannot be scoped to one stream.
const KINESIS_READ_ACTIONS: &[&str] = &[
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
];

/// What an enhanced fan-out consumer needs besides: only with an `AWS::Kinesis::StreamConsumer`.
const KINESIS_FAN_OUT_ACTIONS: &[&str] =
    &["kinesis:SubscribeToShard", "kinesis:DescribeStreamConsumer"];

/// Writing to the function's own log group, which the template creates.
const LOG_ACTIONS: &[&str] = &["logs:CreateLogStream", "logs:PutLogEvents"];

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
            "TumblingWindowInSeconds",
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

/// The function's own `AWS::IAM::Role` and the statements of its inline policies.
fn role_statements<'a>(template: &'a Yaml, function: &Yaml, path: &Path) -> Vec<&'a Yaml> {
    let properties = &function["Properties"];
    assert!(
        properties["Policies"].is_badvalue(),
        "{path:?}: no SAM policies (its templates grant Kinesis and logs on every resource)"
    );
    let role_ref = properties["Role"].as_str().expect("Role: !GetAtt <role>.Arn");
    let role_id = role_ref.strip_suffix(".Arn").expect("Role: !GetAtt <role>.Arn");
    let role = &template["Resources"][role_id];
    assert_eq!(role["Type"].as_str(), Some("AWS::IAM::Role"), "{path:?}: {role_id}");
    assert!(
        role["Properties"]["ManagedPolicyArns"].is_badvalue(),
        "{path:?}: no managed policy (AWSLambdaKinesisExecutionRole grants on *)"
    );
    let trust = &role["Properties"]["AssumeRolePolicyDocument"]["Statement"];
    assert!(
        trust.as_vec().unwrap().iter().all(|statement| {
            strings(&statement["Principal"]["Service"]) == ["lambda.amazonaws.com"]
        }),
        "{path:?}: only Lambda assumes the role"
    );
    let users = resources_of_type(template, "AWS::Serverless::Function")
        .into_iter()
        .filter(|other| other["Properties"]["Role"].as_str() == Some(role_ref))
        .count();
    assert_eq!(users, 1, "{path:?}: {role_id} serves one function");
    role["Properties"]["Policies"]
        .as_vec()
        .expect("inline policies")
        .iter()
        .flat_map(|policy| policy["PolicyDocument"]["Statement"].as_vec().unwrap())
        .collect()
}

#[test]
fn every_function_has_a_role_of_its_own_with_only_what_it_needs_on_its_own_resources() {
    for path in templates() {
        let (_, template) = load(&path);
        let queues = ids_of_type(&template, "AWS::SQS::Queue");
        let topics = ids_of_type(&template, "AWS::SNS::Topic");
        let buckets = ids_of_type(&template, "AWS::S3::Bucket");
        let tables = ids_of_type(&template, "AWS::DynamoDB::Table");
        let fan_out = !resources_of_type(&template, "AWS::Kinesis::StreamConsumer").is_empty();
        let store_actions = idempotency_store_actions();
        for function in resources_of_type(&template, "AWS::Serverless::Function") {
            let idempotency_table_arn =
                idempotency_table(&template, function, &path).map(|table| format!("{table}.Arn"));
            let function_name = function["Properties"]["FunctionName"]
                .as_str()
                .expect("a FunctionName, which the log group's name repeats");
            let log_group = named_resources_of_type(&template, "AWS::Logs::LogGroup")
                .into_iter()
                .find(|(_, group)| {
                    group["Properties"]["LogGroupName"].as_str()
                        == Some(&format!("/aws/lambda/{function_name}"))
                });
            let (log_group, group) =
                log_group.unwrap_or_else(|| panic!("{path:?}: /aws/lambda/{function_name}"));
            assert!(
                group["Properties"]["RetentionInDays"].as_i64().is_some(),
                "{path:?}: {log_group} has a retention"
            );
            let log_group_arn = format!("{log_group}.Arn");

            let mut granted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for statement in role_statements(&template, function, &path) {
                assert_eq!(statement["Effect"].as_str(), Some("Allow"), "{path:?}");
                let resources = strings(&statement["Resource"]);
                assert!(!resources.is_empty(), "{path:?}: a resource");
                for action in strings(&statement["Action"]) {
                    assert!(!action.contains('*'), "{path:?}: {action}: name each action");
                    for resource in &resources {
                        assert_ne!(*resource, "*", "{path:?}: {action} on a resource, not *");
                        let allowed = match action {
                            a if KINESIS_READ_ACTIONS.contains(&a) => *resource == "StreamArn",
                            a if KINESIS_FAN_OUT_ACTIONS.contains(&a) => fan_out,
                            a if LOG_ACTIONS.contains(&a) => *resource == log_group_arn,
                            // The actions the sinks' rustdoc lists (the examples' own
                            // downstream writes use the same), on the template's queues,
                            // topics and buckets; SQS also for Lambda's on-failure records.
                            "sqs:SendMessage" => resource
                                .strip_suffix(".Arn")
                                .is_some_and(|queue| queues.contains(queue)),
                            "sns:Publish" => topics.contains(resource),
                            "s3:PutObject" => buckets
                                .iter()
                                .any(|bucket| resource.starts_with(&format!("${{{bucket}.Arn}}/"))),
                            // page-views' one write (a conditional UpdateItem), on its table.
                            "dynamodb:UpdateItem" => resource
                                .strip_suffix(".Arn")
                                .is_some_and(|table| tables.contains(table)),
                            // clicks-to-dynamodb's one write (BatchWriteItem), on its table;
                            // a function with an idempotency store is checked below instead.
                            "dynamodb:BatchWriteItem" if idempotency_table_arn.is_none() => {
                                resource
                                    .strip_suffix(".Arn")
                                    .is_some_and(|table| tables.contains(table))
                            }
                            // What the idempotency store calls, on the table the function
                            // gives it, and only to a function that uses the store.
                            a if store_actions.contains(a) => {
                                idempotency_table_arn.as_deref() == Some(*resource)
                            }
                            other => panic!("{path:?}: {other} is more than the function needs"),
                        };
                        assert!(allowed, "{path:?}: {action} on {resource}");
                        granted.entry(action).or_default().insert(resource);
                    }
                }
            }
            for action in KINESIS_READ_ACTIONS.iter().chain(LOG_ACTIONS) {
                assert!(granted.contains_key(action), "{path:?}: {action} is granted");
            }
            if let Some(table) = &idempotency_table_arn {
                for action in &store_actions {
                    assert!(
                        granted.get(action.as_str()).is_some_and(|on| on.contains(table.as_str())),
                        "{path:?}: {action} on {table}, which the idempotency store calls"
                    );
                }
            }
            for event in kinesis_events(function) {
                let destination = on_failure_destination(event);
                assert!(
                    granted.get("sqs:SendMessage").is_some_and(|on| on.contains(destination)),
                    "{path:?}: sqs:SendMessage on the on-failure destination {destination}"
                );
            }
        }
    }
}

/// The source of `DynamoDbIdempotency`, the one place that knows what the store calls.
fn idempotency_store_source() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/src/idempotency/dynamodb.rs");
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path:?}: {error}"))
}

/// The IAM actions of the DynamoDB operations `DynamoDbIdempotency` calls, read from its
/// source: every `.client.<operation>()` (`batch_get_item` is `dynamodb:BatchGetItem`). A
/// call added to the store shows here, and the templates must grant it.
fn idempotency_store_actions() -> BTreeSet<String> {
    let source = idempotency_store_source();
    let mut actions = BTreeSet::new();
    for after in source.split(".client").skip(1) {
        let Some(call) = after.trim_start().strip_prefix('.') else { continue };
        let operation: String =
            call.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
        if !call[operation.len()..].starts_with('(') || ["clone", "config"].contains(&&*operation) {
            continue;
        }
        let pascal: String =
            operation.split('_').map(|word| word[..1].to_uppercase() + &word[1..]).collect();
        actions.insert(format!("dynamodb:{pascal}"));
    }
    assert!(
        actions.contains("dynamodb:PutItem") && actions.contains("dynamodb:BatchGetItem"),
        "the store's calls were not found in its source (has it stopped calling \
         `self.client.<operation>()`?): {actions:?}"
    );
    actions
}

/// The IAM actions the store's rustdoc lists (its `IAM:` paragraph).
fn idempotency_store_documented_actions() -> BTreeSet<String> {
    let source = idempotency_store_source();
    let paragraph: String = source
        .lines()
        .map(|line| line.trim_start().trim_start_matches("///").trim())
        .skip_while(|line| !line.starts_with("IAM:"))
        .take_while(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    paragraph.split('`').filter(|word| word.starts_with("dynamodb:")).map(str::to_owned).collect()
}

/// The table the store's rustdoc declares (its `yaml` block): what a template's
/// idempotency table must say.
fn idempotency_store_documented_table() -> Yaml {
    let source = idempotency_store_source();
    let block: String = source
        .lines()
        .map(|line| line.trim_start().strip_prefix("/// ").unwrap_or(line.trim_start()))
        .skip_while(|line| *line != "```yaml")
        .skip(1)
        .take_while(|line| *line != "```")
        .collect::<Vec<_>>()
        .join("\n");
    let documented = YamlLoader::load_from_str(&block).expect("the store's yaml block").remove(0);
    let table = documented.as_hash().and_then(|tables| tables.values().next()).cloned();
    table.expect("the store's documented table")
}

/// The logical id of the table a function keeps idempotency keys in: its example builds
/// the store with `DynamoDbIdempotency::from_env("VAR")`, and the function's environment
/// sets `VAR` to `!Ref Table`. The table must be keyed and expire as the store documents.
fn idempotency_table<'a>(template: &'a Yaml, function: &'a Yaml, path: &Path) -> Option<&'a str> {
    let source = example_source(path);
    let var = source.split("DynamoDbIdempotency::from_env(\"").nth(1)?.split('"').next()?;
    let table = function["Properties"]["Environment"]["Variables"][var]
        .as_str()
        .unwrap_or_else(|| panic!("{path:?}: the function sets {var} for the idempotency store"));
    let resource = &template["Resources"][table];
    assert_eq!(
        resource["Type"].as_str(),
        Some("AWS::DynamoDB::Table"),
        "{path:?}: {var} names a table of the template (!Ref Table)"
    );
    let documented = idempotency_store_documented_table();
    for (key, value) in documented["Properties"].as_hash().unwrap() {
        let key = key.as_str().unwrap();
        assert_eq!(
            &resource["Properties"][key], value,
            "{path:?}: {table}'s {key} is as DynamoDbIdempotency documents it"
        );
    }
    Some(table)
}

/// clickstream's role grants the idempotency store exactly the DynamoDB actions it calls,
/// on its table only: one more grant, or a call the store adds, fails here.
#[test]
fn clickstream_grants_exactly_what_the_idempotency_store_calls() {
    let store_actions = idempotency_store_actions();
    assert_eq!(
        idempotency_store_documented_actions(),
        store_actions,
        "DynamoDbIdempotency's rustdoc (IAM:) lists what its source calls"
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/clickstream/template.yaml");
    let (_, template) = load(&path);
    let function = &template["Resources"]["ClickstreamFunction"];
    let table = idempotency_table(&template, function, &path).expect("clickstream uses the store");
    let table_arn = format!("{table}.Arn");
    let mut granted = BTreeSet::new();
    for statement in role_statements(&template, function, &path) {
        for action in
            strings(&statement["Action"]).into_iter().filter(|a| a.starts_with("dynamodb:"))
        {
            assert_eq!(strings(&statement["Resource"]), [table_arn.as_str()], "{action}");
            granted.insert(action.to_owned());
        }
    }
    assert_eq!(granted, store_actions, "the DynamoDB actions granted to clickstream's role");
}

/// clicks-to-dynamodb's role grants exactly the DynamoDB call its source makes
/// (`batch_write_item`, in `src/table.rs`), on its table only.
#[test]
fn clicks_to_dynamodb_grants_exactly_batch_write_item_on_its_table() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/clicks-to-dynamodb");
    let source = std::fs::read_to_string(example.join("src/table.rs")).unwrap();
    let calls: BTreeSet<&str> = source
        .split(".client")
        .skip(1)
        .filter_map(|after| after.trim_start().strip_prefix('.'))
        .map(|call| call.split('(').next().unwrap())
        .collect();
    assert_eq!(calls, BTreeSet::from(["batch_write_item"]), "the example's DynamoDB calls");
    let path = example.join("template.yaml");
    let (_, template) = load(&path);
    let function = &template["Resources"]["ClicksFunction"];
    let mut granted = Vec::new();
    for statement in role_statements(&template, function, &path) {
        for action in
            strings(&statement["Action"]).into_iter().filter(|a| a.starts_with("dynamodb:"))
        {
            assert_eq!(strings(&statement["Resource"]), ["ClicksTable.Arn"], "{action}");
            granted.push(action);
        }
    }
    assert_eq!(granted, ["dynamodb:BatchWriteItem"], "the DynamoDB actions of its role");
    let table = &template["Resources"]["ClicksTable"]["Properties"];
    assert_eq!(table["KeySchema"][0]["AttributeName"].as_str(), Some("click_id"), "keyed by click");
    let variables = &function["Properties"]["Environment"]["Variables"];
    assert_eq!(variables[clicks_to_dynamodb::TABLE_VAR].as_str(), Some("ClicksTable"));
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

/// The alarm of the template with this namespace, metric name and statistic.
fn alarm<'a>(
    alarms: &[&'a Yaml],
    (namespace, metric, statistic): (&str, &str, &str),
    path: &Path,
) -> &'a Yaml {
    alarms
        .iter()
        .find(|alarm| {
            let properties = &alarm["Properties"];
            properties["Namespace"].as_str() == Some(namespace)
                && properties["MetricName"].as_str() == Some(metric)
                && properties["Statistic"].as_str() == Some(statistic)
        })
        .unwrap_or_else(|| panic!("{path:?}: an alarm on the {statistic} of {namespace} {metric}"))
}

/// An alarm's dimensions as `(name, value)`, values as written (`!Ref X` is `X`).
fn dimensions(alarm: &Yaml) -> Vec<(&str, &Yaml)> {
    alarm["Properties"]["Dimensions"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|dimension| (dimension["Name"].as_str().unwrap(), &dimension["Value"]))
        .collect()
}

/// `!Select [1, !Split ["/", !Ref StreamArn]]`: the stream's name, from its ARN.
fn is_stream_name(value: &Yaml) -> bool {
    value[0].as_i64() == Some(1)
        && value[1][0].as_str() == Some("/")
        && value[1][1].as_str() == Some("StreamArn")
}

#[test]
fn every_template_alarms_when_a_shard_stalls_and_notifies_its_topic() {
    for path in templates() {
        let (text, template) = load(&path);
        assert_eq!(
            template["Parameters"]["AlarmTopicArn"]["Type"].as_str(),
            Some("String"),
            "{path:?}: an AlarmTopicArn parameter"
        );
        let alarms = resources_of_type(&template, "AWS::CloudWatch::Alarm");
        for alarm in &alarms {
            let properties = &alarm["Properties"];
            let name = properties["MetricName"].as_str().unwrap_or("?");
            let actions = &properties["AlarmActions"];
            assert!(
                !actions.is_badvalue() && strings(actions).contains(&"AlarmTopicArn"),
                "{path:?}: the {name} alarm notifies the AlarmTopicArn topic"
            );
            assert!(
                ["breaching", "notBreaching", "ignore", "missing"]
                    .contains(&properties["TreatMissingData"].as_str().unwrap_or("")),
                "{path:?}: the {name} alarm chooses how to treat missing data"
            );
        }
        assert_commented(&text, "TreatMissingData", &path);

        let namespace = runtime_namespace(&path, &template);
        let functions = named_resources_of_type(&template, "AWS::Serverless::Function");
        for (function_id, function) in functions {
            let by_function = |alarm: &Yaml| {
                let dimensions = dimensions(alarm);
                dimensions.len() == 1
                    && dimensions[0].0 == "FunctionName"
                    && dimensions[0].1.as_str() == Some(function_id)
            };
            // Lambda's own metrics: written for failed invocations too.
            let iterator_age = alarm(&alarms, ("AWS/Lambda", "IteratorAge", "Maximum"), &path);
            assert!(by_function(iterator_age), "{path:?}: IteratorAge of {function_id}");
            let errors = alarm(&alarms, ("AWS/Lambda", "Errors", "Sum"), &path);
            assert!(by_function(errors), "{path:?}: Errors of {function_id}");
            // The on-failure queue: the only sign that Lambda discarded a batch.
            for event in kinesis_events(function) {
                let destination = on_failure_destination(event);
                let queue = destination.strip_suffix(".Arn").unwrap();
                let depth = alarm(
                    &alarms,
                    ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum"),
                    &path,
                );
                assert_eq!(
                    dimensions(depth).iter().map(|(n, v)| (*n, v.as_str())).collect::<Vec<_>>(),
                    [("QueueName", Some(format!("{queue}.QueueName").as_str()))],
                    "{path:?}: the depth of the on-failure queue {queue}"
                );
            }
            let dead_lettered = alarm(&alarms, (&namespace, "DeadLettered", "Sum"), &path);
            let dimensions = dimensions(dead_lettered);
            assert_eq!(dimensions.len(), 2, "{path:?}: the processor's dimensions");
            assert_eq!(dimensions[0].0, "FunctionName");
            assert_eq!(dimensions[0].1.as_str(), Some(function_id), "{path:?}");
            assert_eq!(dimensions[1].0, "StreamName");
            assert!(is_stream_name(dimensions[1].1), "{path:?}: the stream's name");
        }
        assert!(!template["Outputs"].as_hash().unwrap().is_empty(), "{path:?}");
    }
}

/// The Rust source of the template's example: `src/main.rs`, and `src/lib.rs` if any.
fn example_source(path: &Path) -> String {
    ["src/main.rs", "src/lib.rs"]
        .iter()
        .filter_map(|file| std::fs::read_to_string(path.with_file_name(file)).ok())
        .collect()
}

/// A window processor answers only window events (an event without `window` is an
/// invocation error), and a mapping with a tumbling window needs one (Lambda counts a
/// response without `state` as a failure): the two go together.
#[test]
fn a_tumbling_window_and_a_window_processor_go_together() {
    let mut windowed = Vec::new();
    for path in templates() {
        let (_, template) = load(&path);
        let window_processor = example_source(&path).contains("#[kinesis_processor(window");
        for function in resources_of_type(&template, "AWS::Serverless::Function") {
            for event in kinesis_events(function) {
                let seconds = event["Properties"]["TumblingWindowInSeconds"].as_i64();
                assert_eq!(
                    seconds.is_some_and(|seconds| seconds > 0),
                    window_processor,
                    "{path:?}: TumblingWindowInSeconds {seconds:?}, window processor: \
                     {window_processor}"
                );
                if let Some(seconds) = seconds {
                    assert!((1..=900).contains(&seconds), "{path:?}: {seconds} s");
                    windowed.push(path.clone());
                }
            }
        }
    }
    assert!(
        windowed.iter().any(|path| path.ends_with("page-views/template.yaml")),
        "page-views counts in tumbling windows: {windowed:?}"
    );
}

/// The namespace the example's processor writes its metrics to: its `metrics_namespace`
/// (in `src/main.rs`, or `src/lib.rs` when it has one), else the template's
/// `KINESIS_PROCESSOR_METRICS_NAMESPACE`, else the runtime's default.
fn runtime_namespace(path: &Path, template: &Yaml) -> String {
    let source = example_source(path);
    let from_source = source
        .split("metrics_namespace = \"")
        .nth(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned());
    let from_environment: Vec<&str> = resources_of_type(template, "AWS::Serverless::Function")
        .into_iter()
        .filter_map(|function| {
            function["Properties"]["Environment"]["Variables"]
                [kinesis_processor::metrics::NAMESPACE_ENV]
                .as_str()
        })
        .collect();
    if let (Some(source), Some(environment)) = (&from_source, from_environment.first()) {
        assert_eq!(source, environment, "{path:?}: the source's namespace wins; say the same");
    }
    from_source
        .or(from_environment.first().map(|n| (*n).to_owned()))
        .unwrap_or_else(|| kinesis_processor::metrics::DEFAULT_NAMESPACE.to_owned())
}

#[kinesis_processor(format = text)]
async fn accept(_line: String) -> Result<(), RecordError> {
    Ok(())
}

#[kinesis_processor(format = text, chunk = 2)]
async fn accept_chunk(_lines: Chunk<String>) -> Result<(), ChunkError> {
    Ok(())
}

/// The metric and dimension names of the EMF objects the runtime writes for a batch, of a
/// per-record function and of a chunk function.
async fn runtime_metrics() -> (BTreeSet<String>, Vec<String>) {
    let processor = accept();
    let report = processor.process(TestBatch::new().text("a").text("b").build()).await.unwrap();
    let emf = processor.emf(report.summary());
    let chunked = accept_chunk();
    let report = chunked.process(TestBatch::new().text("a").build()).await.unwrap();
    let chunk_emf = chunked.emf(report.summary());
    let directive = &emf["_aws"]["CloudWatchMetrics"][0];
    let chunk_directive = &chunk_emf["_aws"]["CloudWatchMetrics"][0];
    let names: BTreeSet<String> = [directive, chunk_directive]
        .into_iter()
        .flat_map(|directive| directive["Metrics"].as_array().unwrap())
        .map(|metric| metric["Name"].as_str().unwrap().to_owned())
        .collect();
    let dimensions = directive["Dimensions"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains("IteratorAge") && names.contains("DeadLettered"), "{names:?}");
    assert!(names.contains("PartialChunkFailures"), "{names:?}");
    (names, dimensions)
}

/// Metrics AWS publishes, with the dimension that names the resource.
const AWS_METRICS: &[(&str, &str, &[&str])] = &[
    (
        "AWS/Lambda",
        "FunctionName",
        &["IteratorAge", "Errors", "Throttles", "Duration", "Invocations", "ConcurrentExecutions"],
    ),
    (
        "AWS/SQS",
        "QueueName",
        &[
            "ApproximateNumberOfMessagesVisible",
            "ApproximateAgeOfOldestMessage",
            "NumberOfMessagesSent",
        ],
    ),
];

/// A `!Sub` dashboard body as JSON: every `${X}` becomes `<X>`, and the variables of the
/// `!Sub` list form are returned beside it.
fn dashboard_body<'a>(dashboard: &'a Yaml, path: &Path) -> (Value, Option<&'a Yaml>) {
    let body = &dashboard["Properties"]["DashboardBody"];
    let (text, variables) = match body {
        Yaml::String(text) => (text.as_str(), None),
        Yaml::Array(sub) => (sub[0].as_str().unwrap(), Some(&sub[1])),
        other => panic!("{path:?}: DashboardBody is a !Sub, not {other:?}"),
    };
    let mut resolved = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let end = rest[start..].find('}').unwrap() + start;
        resolved.push_str(&rest[..start]);
        resolved.push_str(&format!("<{}>", &rest[start + 2..end]));
        rest = &rest[end + 1..];
    }
    resolved.push_str(rest);
    let json = serde_json::from_str(&resolved)
        .unwrap_or_else(|error| panic!("{path:?}: the dashboard body is not JSON: {error}"));
    (json, variables)
}

#[tokio::test]
async fn every_dashboard_shows_metrics_the_runtime_or_aws_publishes() {
    let (runtime_names, runtime_dimensions) = runtime_metrics().await;
    for path in templates() {
        let (_, template) = load(&path);
        let namespace = runtime_namespace(&path, &template);
        let dashboards = resources_of_type(&template, "AWS::CloudWatch::Dashboard");
        assert_eq!(dashboards.len(), 1, "{path:?}: a dashboard");
        let (body, variables) = dashboard_body(dashboards[0], &path);
        let functions = ids_of_type(&template, "AWS::Serverless::Function");
        let queues = ids_of_type(&template, "AWS::SQS::Queue");

        // Every metric a widget names: (namespace, metric, dimension values by name).
        let mut shown: Vec<(String, String, BTreeMap<String, String>)> = Vec::new();
        for widget in body["widgets"].as_array().expect("widgets") {
            if widget["type"] != "metric" {
                continue;
            }
            let properties = &widget["properties"];
            assert_eq!(properties["region"], "<AWS::Region>", "{path:?}: the stack's region");
            for row in properties["metrics"].as_array().expect("metrics") {
                let row: Vec<&str> =
                    row.as_array().unwrap().iter().filter_map(Value::as_str).collect();
                assert!(
                    row.len() >= 2
                        && row.len() % 2 == 0
                        && !row.contains(&"...")
                        && !row.contains(&"."),
                    "{path:?}: a metric row written out in full: {row:?}"
                );
                let dimensions: BTreeMap<String, String> = row[2..]
                    .chunks(2)
                    .map(|pair| (pair[0].to_owned(), pair[1].to_owned()))
                    .collect();
                shown.push((row[0].to_owned(), row[1].to_owned(), dimensions));
            }
        }

        for (metric_namespace, metric, dimensions) in &shown {
            let names: Vec<&str> = dimensions.keys().map(String::as_str).collect();
            if *metric_namespace == namespace {
                assert!(runtime_names.contains(metric), "{path:?}: the runtime writes no {metric}");
                assert_eq!(names, sorted(&runtime_dimensions), "{path:?}: {metric}'s dimensions");
                let function = dimensions["FunctionName"].trim_matches(['<', '>']);
                assert!(functions.contains(function), "{path:?}: {metric} of {function}");
                let stream = dimensions["StreamName"].trim_matches(['<', '>']);
                let variable = variables.map(|v| &v[stream]).filter(|v| !v.is_badvalue());
                assert!(
                    variable.is_some_and(is_stream_name),
                    "{path:?}: {metric}'s StreamName is the stream's name"
                );
                continue;
            }
            let (_, dimension, metrics) =
                AWS_METRICS.iter().find(|(aws, _, _)| aws == metric_namespace).unwrap_or_else(
                    || panic!("{path:?}: {metric_namespace} is neither the runtime's nor AWS's"),
                );
            assert!(metrics.contains(&metric.as_str()), "{path:?}: AWS writes no {metric}");
            assert_eq!(names, [*dimension], "{path:?}: {metric_namespace} {metric}");
            let value = dimensions[*dimension].trim_matches(['<', '>']);
            let named = match *dimension {
                "FunctionName" => functions.contains(value),
                _ => value.strip_suffix(".QueueName").is_some_and(|q| queues.contains(q)),
            };
            assert!(named, "{path:?}: {metric} of {value}, a resource of the template");
        }

        // What someone watching the processor needs.
        let has = |metric_namespace: &str, metric: &str| {
            shown.iter().any(|(n, m, _)| n == metric_namespace && m == metric)
        };
        let mut wanted: Vec<(&str, String)> = vec![
            ("AWS/Lambda", "IteratorAge".into()),
            ("AWS/Lambda", "Errors".into()),
            ("AWS/Lambda", "Throttles".into()),
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible".into()),
        ];
        for metric in [
            "IteratorAge",
            "RecordsReceived",
            "RecordsSucceeded",
            "ReportedFailures",
            "BatchDuration",
        ] {
            wanted.push((namespace.as_str(), metric.into()));
        }
        for reason in kinesis_processor::dead_letter::DeadLetterReason::ALL {
            wanted.push((namespace.as_str(), format!("DeadLettered.{}", reason.as_str())));
        }
        for (metric_namespace, metric) in wanted {
            assert!(
                has(metric_namespace, &metric),
                "{path:?}: the dashboard shows {metric_namespace} {metric}"
            );
        }
    }
}

fn sorted(names: &[String]) -> Vec<&str> {
    let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
    names.sort_unstable();
    names
}
