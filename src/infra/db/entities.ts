// MikroORM entities, defined without decorators. Column types live in the per-dialect
// migrations; timestamps are ISO 8601 strings in the application on both dialects.
import { defineEntity, p } from '@mikro-orm/core';

export const CompanyEntity = defineEntity({
  name: 'Company',
  tableName: 'company',
  properties: {
    id: p.integer().primary().autoincrement(),
    name: p.string(),
    /** name folded for search, null for ASCII names (src/domain/name-fold.ts). */
    nameFold: p.string().nullable(),
    legalName: p.string().nullable(),
    domain: p.string().nullable(),
    website: p.string().nullable(),
    registrationNumber: p.string().nullable(),
    registrationCountry: p.string().nullable(),
    lei: p.string().nullable(),
    industry: p.string().nullable(),
    employees: p.integer().nullable(),
    revenueAmount: p.decimal('string').nullable(),
    revenueCurrency: p.string().nullable(),
    addressLine1: p.string().fieldName('address_line1').nullable(),
    addressLine2: p.string().fieldName('address_line2').nullable(),
    city: p.string().nullable(),
    region: p.string().nullable(),
    postcode: p.string().nullable(),
    country: p.string().nullable(),
    status: p.string(),
    incorporationDate: p.string().nullable(),
    tags: p.json<string[]>(),
    version: p.integer().version(),
    createdAt: p.string(),
    updatedAt: p.string(),
    deletedAt: p.string().nullable(),
  },
});

export const CompanyExternalIdEntity = defineEntity({
  name: 'CompanyExternalId',
  tableName: 'company_external_id',
  properties: {
    source: p.string().primary(),
    externalId: p.string().primary(),
    companyId: p.integer(),
  },
});

export const OutboxEventEntity = defineEntity({
  name: 'OutboxEvent',
  tableName: 'outbox_event',
  properties: {
    id: p.integer().primary().autoincrement(),
    type: p.string(),
    companyId: p.integer().nullable(),
    actor: p.string(),
    payload: p.json<Record<string, unknown>>(),
    status: p.string(),
    attempts: p.integer(),
    createdAt: p.string(),
  },
});

export const StoreMetaEntity = defineEntity({
  name: 'StoreMeta',
  tableName: 'store_meta',
  properties: {
    key: p.string().primary(),
    value: p.string(),
  },
});


export const AppUserEntity = defineEntity({
  name: 'AppUser',
  tableName: 'app_user',
  properties: {
    id: p.integer().primary().autoincrement(),
    username: p.string(),
    passwordHash: p.string(),
    role: p.string(),
    disabledAt: p.string().nullable(),
    createdAt: p.string(),
    updatedAt: p.string(),
  },
});

export const AuthSessionEntity = defineEntity({
  name: 'AuthSession',
  tableName: 'auth_session',
  properties: {
    id: p.string().primary(),
    userId: p.integer(),
    kind: p.string(),
    name: p.string().nullable(),
    role: p.string(),
    createdAt: p.string(),
    expiresAt: p.string(),
    revokedAt: p.string().nullable(),
  },
});

export const LoginThrottleEntity = defineEntity({
  name: 'LoginThrottle',
  tableName: 'login_throttle',
  properties: {
    username: p.string().primary(),
    failures: p.integer(),
    windowStartedAt: p.string(),
    lockedUntil: p.string().nullable(),
  },
});

export const ENTITIES = [CompanyEntity, CompanyExternalIdEntity, OutboxEventEntity, StoreMetaEntity, AppUserEntity, AuthSessionEntity, LoginThrottleEntity];
