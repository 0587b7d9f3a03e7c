#!/bin/sh
# Placeholder for Prisma's native schema-engine binary, which cannot be downloaded on our machines.
# PRISMA_SCHEMA_ENGINE_BINARY points here so that `prisma generate` (pure WebAssembly) skips the
# download. Migrations run through @prisma/schema-engine-wasm instead: see src/database/migrator.ts.
echo "The native Prisma schema engine is not used in this project: use npm run db:migrate / db:migration." >&2
exit 1
