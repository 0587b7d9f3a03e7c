-- CreateEnum
CREATE TYPE "Role" AS ENUM ('subscriber', 'provider', 'admin');

-- CreateEnum
CREATE TYPE "Tier" AS ENUM ('free', 'basic', 'pro', 'elite');

-- CreateEnum
CREATE TYPE "SignalSide" AS ENUM ('buy', 'sell', 'long', 'short', 'close');

-- CreateEnum
CREATE TYPE "SignalStatus" AS ENUM ('active', 'closed', 'cancelled');

-- CreateTable
CREATE TABLE "users" (
    "id" UUID NOT NULL,
    "email" TEXT NOT NULL,
    "password_hash" TEXT NOT NULL,
    "role" "Role" NOT NULL DEFAULT 'subscriber',
    "tier" "Tier" NOT NULL DEFAULT 'free',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "api_keys" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "key_hash" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "signals" (
    "id" UUID NOT NULL,
    "seq" BIGINT NOT NULL,
    "provider_id" UUID NOT NULL,
    "external_id" TEXT NOT NULL,
    "symbol" TEXT NOT NULL,
    "market" TEXT NOT NULL,
    "side" "SignalSide" NOT NULL,
    "entry" DECIMAL(38,18) NOT NULL,
    "stop_loss" DECIMAL(38,18),
    "take_profits" DECIMAL(38,18)[],
    "confidence" INTEGER NOT NULL,
    "timeframe" TEXT NOT NULL,
    "note" TEXT,
    "min_tier" "Tier" NOT NULL DEFAULT 'free',
    "status" "SignalStatus" NOT NULL DEFAULT 'active',
    "version" INTEGER NOT NULL DEFAULT 1,
    "issued_at" TIMESTAMPTZ(3) NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL,
    "expires_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "signals_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "signal_revisions" (
    "signal_id" UUID NOT NULL,
    "version" INTEGER NOT NULL,
    "seq" BIGINT NOT NULL,
    "content_hash" TEXT NOT NULL,
    "min_tier" "Tier" NOT NULL,
    "payload" JSONB NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "signal_revisions_pkey" PRIMARY KEY ("signal_id","version")
);

-- CreateTable
CREATE TABLE "sequence_counters" (
    "name" TEXT NOT NULL,
    "value" BIGINT NOT NULL,

    CONSTRAINT "sequence_counters_pkey" PRIMARY KEY ("name")
);

-- CreateIndex
CREATE UNIQUE INDEX "users_email_key" ON "users"("email");

-- CreateIndex
CREATE UNIQUE INDEX "api_keys_key_hash_key" ON "api_keys"("key_hash");

-- CreateIndex
CREATE INDEX "api_keys_user_id_idx" ON "api_keys"("user_id");

-- CreateIndex
CREATE UNIQUE INDEX "signals_seq_key" ON "signals"("seq");

-- CreateIndex
CREATE INDEX "signals_symbol_seq_idx" ON "signals"("symbol", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "signals_provider_id_external_id_key" ON "signals"("provider_id", "external_id");

-- CreateIndex
CREATE UNIQUE INDEX "signal_revisions_seq_key" ON "signal_revisions"("seq");

-- CreateIndex
CREATE INDEX "signal_revisions_signal_id_content_hash_idx" ON "signal_revisions"("signal_id", "content_hash");

-- AddForeignKey
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "signals" ADD CONSTRAINT "signals_provider_id_fkey" FOREIGN KEY ("provider_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "signal_revisions" ADD CONSTRAINT "signal_revisions_signal_id_fkey" FOREIGN KEY ("signal_id") REFERENCES "signals"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Seed the gapless delivery sequence (see SequenceCounter in schema.prisma).
INSERT INTO "sequence_counters" ("name", "value") VALUES ('signal', 0);
