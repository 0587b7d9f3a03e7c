-- AlterEnum
ALTER TYPE "SignalStatus" ADD VALUE 'expired';

-- CreateTable
CREATE TABLE "delivery_receipts" (
    "user_id" UUID NOT NULL,
    "from_seq" BIGINT NOT NULL,
    "seq" BIGINT NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "delivery_receipts_pkey" PRIMARY KEY ("user_id")
);

-- CreateTable
CREATE TABLE "tier_changes" (
    "id" BIGSERIAL NOT NULL,
    "user_id" UUID NOT NULL,
    "changed_by" UUID,
    "from_tier" "Tier" NOT NULL,
    "to_tier" "Tier" NOT NULL,
    "at_seq" BIGINT NOT NULL,
    "changed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "tier_changes_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "tier_changes_user_id_at_seq_idx" ON "tier_changes"("user_id", "at_seq");

-- CreateIndex
CREATE INDEX "signals_expires_at_idx" ON "signals"("expires_at");

-- AddForeignKey
ALTER TABLE "delivery_receipts" ADD CONSTRAINT "delivery_receipts_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "tier_changes" ADD CONSTRAINT "tier_changes_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
