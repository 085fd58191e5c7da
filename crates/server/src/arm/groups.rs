//! Subscriptions (the deployment), resource groups, and the generic resource listing.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use wharf_arm::{ArmError, ResourceId, types, validate_resource_group_name};
use wharf_storage::{ResourceFilter, ResourceRecord};

use super::{ArmCtx, json_response, storage_error};
use crate::state::AppState;

pub fn subscription_json(state: &AppState) -> Value {
    json!({
        "id": format!("/subscriptions/{}", state.subscription_id),
        "subscriptionId": state.subscription_id,
        "tenantId": state.tenant_id,
        "displayName": "Wharf",
        "state": "Enabled",
        "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "Wharf", "spendingLimit": "Off"},
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
    })
}

pub fn list_subscriptions(ctx: &ArmCtx) -> Response {
    json_response(StatusCode::OK, &json!({"value": [subscription_json(&ctx.state)]}))
}

fn group_id(state: &AppState, name: &str) -> String {
    ResourceId::resource_group(&state.subscription_id, name).to_string()
}

/// Loads a resource group, or ARM's `ResourceGroupNotFound`.
pub async fn require(state: &AppState, name: &str) -> Result<ResourceRecord, ArmError> {
    state
        .meta
        .resource_get(&group_id(state, name))
        .await
        .map_err(|e| storage_error("reading a resource group", e))?
        .ok_or_else(|| ArmError::resource_group_not_found(name))
}

pub async fn list(ctx: &ArmCtx) -> Result<Response, ArmError> {
    let filter = ResourceFilter { resource_type: Some(types::RESOURCE_GROUP.into()), resource_group: None };
    let groups =
        ctx.state.meta.resource_list(&filter).await.map_err(|e| storage_error("listing resource groups", e))?;
    let value: Vec<Value> =
        groups.into_iter().filter(|g| ctx.shows(&g.id, types::RESOURCE_GROUP)).map(|g| g.body).collect();
    Ok(json_response(StatusCode::OK, &json!({"value": value})))
}

pub async fn get(ctx: &ArmCtx, name: &str) -> Result<Response, ArmError> {
    Ok(json_response(StatusCode::OK, &require(&ctx.state, name).await?.body))
}

/// `HEAD` (`az group exists`): 204 or 404, without a body.
pub async fn exists(ctx: &ArmCtx, name: &str) -> Result<Response, ArmError> {
    match require(&ctx.state, name).await {
        Ok(_) => Ok(json_response(StatusCode::NO_CONTENT, &Value::Null)),
        Err(e) if e.status == 404 => Ok(json_response(StatusCode::NOT_FOUND, &Value::Null)),
        Err(e) => Err(e),
    }
}

fn tags_of(body: &Value) -> Result<Value, ArmError> {
    match body.get("tags") {
        None | Some(Value::Null) => Ok(json!({})),
        Some(Value::Object(m)) if m.values().all(Value::is_string) => Ok(Value::Object(m.clone())),
        Some(_) => Err(ArmError::invalid_request("'tags' must be an object of string values.")),
    }
}

pub async fn put(ctx: &ArmCtx, name: &str) -> Result<Response, ArmError> {
    validate_resource_group_name(name)?;
    let body = ctx.json()?;
    let location = body
        .get("location")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| {
            ArmError::bad_request("LocationRequired", "The location property is required for this definition.")
        })?
        .to_ascii_lowercase()
        .replace(' ', "");
    let tags = tags_of(&body)?;
    let id = group_id(&ctx.state, name);
    let existing = ctx.state.meta.resource_get(&id).await.map_err(|e| storage_error("reading a resource group", e))?;
    let now = chrono::Utc::now();
    let (record_name, key, created_at) = match &existing {
        Some(r) => (r.name.clone(), r.key.clone(), r.created_at),
        None => (name.to_string(), uuid::Uuid::new_v4().to_string(), now),
    };
    if let Some(r) = &existing {
        let old_location = r.body["location"].as_str().unwrap_or_default();
        if old_location != location {
            return Err(ArmError::new(
                409,
                "InvalidResourceGroupLocation",
                format!(
                    "Invalid resource group location '{location}'. The Resource group already exists in location '{old_location}' in resource group '{name}'. A resource group cannot be moved to another location."
                ),
            ));
        }
    }
    let id = group_id(&ctx.state, &record_name);
    let body = json!({
        "id": id,
        "name": record_name,
        "type": types::RESOURCE_GROUP,
        "location": location,
        "managedBy": Value::Null,
        "tags": tags,
        "properties": {"provisioningState": "Succeeded"},
    });
    let record = ResourceRecord {
        id: id.clone(),
        resource_type: types::RESOURCE_GROUP.into(),
        name: record_name,
        resource_group: None,
        key,
        body: body.clone(),
        created_at,
        updated_at: now,
    };
    let created =
        ctx.state.meta.resource_put(&record).await.map_err(|e| storage_error("storing a resource group", e))?;
    Ok(json_response(if created { StatusCode::CREATED } else { StatusCode::OK }, &body))
}

pub async fn patch(ctx: &ArmCtx, name: &str) -> Result<Response, ArmError> {
    let mut record = require(&ctx.state, name).await?;
    let body = ctx.json()?;
    if body.get("tags").is_some() {
        record.body["tags"] = tags_of(&body)?;
    }
    record.updated_at = chrono::Utc::now();
    ctx.state.meta.resource_put(&record).await.map_err(|e| storage_error("storing a resource group", e))?;
    Ok(json_response(StatusCode::OK, &record.body))
}

pub async fn delete(ctx: &ArmCtx, name: &str) -> Result<Response, ArmError> {
    let record = require(&ctx.state, name).await?;
    let deleted = ctx.state.delete_tree(&record.id).await.map_err(|e| storage_error("deleting a resource group", e))?;
    super::resources::after_delete(&ctx.state, &deleted).await?;
    Ok(json_response(StatusCode::OK, &Value::Null))
}

/// `GET /subscriptions/{sub}/resources` with ARM's `$filter` (the forms az uses:
/// `resourceType eq '…'`, `name eq '…'`, joined by `and`).
pub async fn list_resources(ctx: &ArmCtx, group: Option<&str>) -> Result<Response, ArmError> {
    if let Some(g) = group {
        require(&ctx.state, g).await?;
    }
    let conditions = parse_filter(ctx.query.text("$filter"))?;
    let filter = ResourceFilter { resource_type: None, resource_group: group.map(str::to_string) };
    let all = ctx.state.meta.resource_list(&filter).await.map_err(|e| storage_error("listing resources", e))?;
    let value: Vec<Value> = all
        .into_iter()
        .filter(|r| !r.resource_type.eq_ignore_ascii_case(types::RESOURCE_GROUP))
        // Role assignments and definitions are extension resources: ARM's listing leaves them out.
        .filter(|r| !r.resource_type.to_ascii_lowercase().starts_with("microsoft.authorization/"))
        .filter(|r| r.id.starts_with("/subscriptions/"))
        .filter(|r| ctx.shows(&r.id, &r.resource_type))
        .filter(|r| {
            conditions.iter().all(|(field, v)| match field.as_str() {
                "resourcetype" => r.resource_type.eq_ignore_ascii_case(v),
                "name" => r.name.eq_ignore_ascii_case(v),
                _ => false,
            })
        })
        .map(|r| {
            let b = &r.body;
            json!({"id": b["id"], "name": b["name"], "type": b["type"], "location": b["location"],
                   "tags": b.get("tags").cloned().unwrap_or(json!({})), "sku": b.get("sku").cloned().unwrap_or(Value::Null)})
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"value": value})))
}

/// Parses `field eq 'value' [and field eq 'value' …]` for the fields ARM supports here.
pub fn parse_filter(f: &str) -> Result<Vec<(String, String)>, ArmError> {
    let f = f.trim();
    if f.is_empty() {
        return Ok(vec![]);
    }
    let bad = || {
        ArmError::bad_request(
            "InvalidFilterInQueryString",
            format!("The $filter '{f}' is not supported. Use resourceType eq '…' and/or name eq '…'."),
        )
    };
    let mut out = vec![];
    for clause in split_and(f) {
        let mut parts = clause.trim().splitn(3, ' ');
        let (field, op, value) =
            (parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?);
        let value = value.trim();
        if !op.eq_ignore_ascii_case("eq") || !value.starts_with('\'') || !value.ends_with('\'') || value.len() < 2 {
            return Err(bad());
        }
        let field = field.to_ascii_lowercase();
        if field != "resourcetype" && field != "name" {
            return Err(bad());
        }
        out.push((field, value[1..value.len() - 1].replace("''", "'")));
    }
    Ok(out)
}

fn split_and(f: &str) -> Vec<&str> {
    let lower = f.to_ascii_lowercase();
    let mut parts = vec![];
    let mut start = 0;
    let mut in_quote = false;
    let bytes = lower.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            in_quote = !in_quote;
        } else if !in_quote && lower[i..].starts_with(" and ") {
            parts.push(&f[start..i]);
            i += 5;
            start = i;
            continue;
        }
        i += 1;
    }
    parts.push(&f[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::parse_filter;

    #[test]
    fn filters() {
        let f = parse_filter("resourceType eq 'Microsoft.ContainerRegistry/registries' and name eq 'a and b'").unwrap();
        assert_eq!(
            f,
            vec![
                ("resourcetype".into(), "Microsoft.ContainerRegistry/registries".into()),
                ("name".into(), "a and b".into())
            ]
        );
        assert!(parse_filter("location eq 'x'").is_err());
        assert!(parse_filter("name ne 'x'").is_err());
        assert!(parse_filter("").unwrap().is_empty());
    }
}
