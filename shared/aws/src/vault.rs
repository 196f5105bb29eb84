//! [`SecretsManagerVault`]: tenants' secret values in Secrets Manager, one
//! secret per tenant and name under the deployment's path
//! (`FIREWATCH_TENANT_SECRETS_PREFIX`, e.g. `firewatch/tenants/`, giving
//! `firewatch/tenants/acme/PD_ROUTING_KEY`). The table keeps each secret's
//! name and times; the value is only here.

use std::sync::Arc;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use firewatch_domain::ports::TenantVault;
use firewatch_types::TenantId;

pub struct SecretsManagerVault {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
}

impl SecretsManagerVault {
    pub fn new(client: aws_sdk_secretsmanager::Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
        }
    }

    /// The secret's id: the prefix, the tenant, the name (both checked
    /// identifiers, so the path cannot be walked).
    fn id(&self, tenant: &TenantId, name: &str) -> String {
        format!("{}{tenant}/{name}", self.prefix)
    }
}

#[async_trait]
impl TenantVault for SecretsManagerVault {
    async fn put(&self, tenant: &TenantId, name: &str, value: &str) -> Result<(), String> {
        let id = self.id(tenant, name);
        match self
            .client
            .put_secret_value()
            .secret_id(&id)
            .secret_string(value)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                self.client
                    .create_secret()
                    .name(&id)
                    .secret_string(value)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("Secrets Manager {id}: {}", DisplayErrorContext(&e)))
            }
            Err(e) => Err(format!("Secrets Manager {id}: {}", DisplayErrorContext(&e))),
        }
    }

    async fn get(&self, tenant: &TenantId, name: &str) -> Result<Option<String>, String> {
        let id = self.id(tenant, name);
        crate::config::read_secret(&self.client, &id).await
    }

    async fn delete(&self, tenant: &TenantId, name: &str) -> Result<(), String> {
        let id = self.id(tenant, name);
        match self
            .client
            .delete_secret()
            .secret_id(&id)
            // A name set again at once must be usable at once.
            .force_delete_without_recovery(true)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(format!("Secrets Manager {id}: {}", DisplayErrorContext(&e))),
        }
    }
}

/// The vault `FIREWATCH_TENANT_SECRETS_PREFIX` names (through `var`), if
/// set; `FIREWATCH_SECRETSMANAGER_ENDPOINT` points it elsewhere (tests).
pub fn vault_from(
    sdk: &SdkConfig,
    var: impl Fn(&str) -> Option<String>,
) -> Option<Arc<dyn TenantVault>> {
    let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
    let prefix = var("FIREWATCH_TENANT_SECRETS_PREFIX")?;
    let client =
        crate::config::secrets_client(sdk, var("FIREWATCH_SECRETSMANAGER_ENDPOINT").as_deref());
    Some(Arc::new(SecretsManagerVault::new(client, prefix)))
}
