import { Body, Controller, Get, HttpCode, Post, Query, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { ApiKeyGuard, CurrentPrincipal, JwtAuthGuard } from '../auth/auth.guards.js';
import type { Principal } from '../auth/principal.js';
import { TierCache } from '../auth/tier-cache.service.js';
import { AppError, type ErrorDetail } from '../common/app-error.js';
import { ApiZodBody } from '../common/openapi.js';
import { validationError, ZodValidationPipe, zodIssues } from '../common/zod-validation.pipe.js';
import { AppConfig } from '../config/app-config.js';
import { listSignalsQuerySchema, syncBatchSchema, syncSignalSchema, type ListSignalsQuery, type SyncSignalInput } from './signal.dto.js';
import { filterFromQuery } from './signal-filter.js';
import type { SignalView, SyncOutcome, SyncResult } from './signal.types.js';
import { SignalsService } from './signals.service.js';

interface SyncResponse {
  result: SyncResult;
  seq: number;
  signal: SignalView;
}

type BatchItemResponse =
  | ({ index: number; status: 200 | 201 } & SyncResponse)
  | { index: number; status: number; error: { code: string; message: string; details?: ErrorDetail[] } };

const toResponse = ({ result, signal }: SyncOutcome): SyncResponse => ({ result, seq: signal.seq, signal });

@ApiTags('signals')
@Controller('api/v1')
export class SignalsController {
  private readonly batchSchema: ReturnType<typeof syncBatchSchema>;
  private readonly listQueryPipe: ZodValidationPipe<ReturnType<typeof listSignalsQuerySchema>>;

  constructor(
    private readonly signals: SignalsService,
    private readonly tiers: TierCache,
    config: AppConfig,
  ) {
    this.batchSchema = syncBatchSchema(config.get('SYNC_BATCH_MAX_ITEMS'));
    this.listQueryPipe = new ZodValidationPipe(listSignalsQuerySchema(config.get('SIGNALS_PAGE_MAX')));
  }

  @Post('external-signals/sync/signal')
  @UseGuards(ApiKeyGuard)
  @ApiHeader({ name: 'X-Api-Key', required: true })
  @ApiOperation({
    summary: 'Upsert one signal by (provider, external_id): 201 new, 200 amended (new version) or identical re-send',
  })
  @ApiZodBody(syncSignalSchema)
  async syncOne(
    @CurrentPrincipal() provider: Principal,
    @Body(new ZodValidationPipe(syncSignalSchema)) body: SyncSignalInput,
    @Res({ passthrough: true }) response: Response,
  ): Promise<SyncResponse> {
    const outcome = await this.signals.sync(provider.userId, body);
    response.status(outcome.result === 'created' ? 201 : 200);
    return toResponse(outcome);
  }

  @Post('external-signals/sync/signals')
  @HttpCode(200)
  @UseGuards(ApiKeyGuard)
  @ApiHeader({ name: 'X-Api-Key', required: true })
  @ApiOperation({ summary: 'Upsert a batch of signals; each item is answered individually, in order' })
  async syncMany(@CurrentPrincipal() provider: Principal, @Body() body: unknown): Promise<{ results: BatchItemResponse[] }> {
    const envelope = this.batchSchema.safeParse(body);
    if (!envelope.success) throw validationError(zodIssues(envelope.error));
    const results: BatchItemResponse[] = [];
    const valid: { index: number; input: SyncSignalInput }[] = [];
    envelope.data.signals.forEach((item, index) => {
      const parsed = syncSignalSchema.safeParse(item);
      if (parsed.success) {
        valid.push({ index, input: parsed.data });
        return;
      }
      const details = zodIssues(parsed.error).map((d) => ({ ...d, field: `signals[${index}].${d.field}` }));
      results[index] = { index, status: 400, error: validationError(details).toJSON() };
    });
    const settled = await this.signals.syncEach(
      provider.userId,
      valid.map((item) => item.input),
    );
    const unavailable = (o: PromiseSettledResult<unknown>) =>
      o.status === 'rejected' && o.reason instanceof AppError && o.reason.code === 'database_unavailable';
    if (settled.length > 0 && settled.every(unavailable)) throw (settled[0] as PromiseRejectedResult).reason;
    settled.forEach((outcome, i) => {
      const index = valid[i]!.index;
      if (outcome.status === 'fulfilled') {
        results[index] = { index, status: outcome.value.result === 'created' ? 201 : 200, ...toResponse(outcome.value) };
        return;
      }
      const error = outcome.reason instanceof AppError ? outcome.reason : new AppError('internal_error', 'The signal could not be stored');
      results[index] = { index, status: error.status, error: error.toJSON() };
    });
    return { results };
  }

  @Get('signals')
  @UseGuards(JwtAuthGuard)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Signals after a seq, oldest first, filtered by your tier and the filter (polling and catch-up)' })
  @ApiQuery({ name: 'after_seq', required: false, description: 'non-negative integer (decimal digits); default 0' })
  @ApiQuery({ name: 'limit', required: false, description: 'page size, 1 to SIGNALS_PAGE_MAX; default 100' })
  @ApiQuery({ name: 'symbols', required: false, description: 'comma-separated symbols (the filter of the WebSocket URL)' })
  @ApiQuery({ name: 'symbol', required: false, description: 'one symbol (kept for older clients)' })
  @ApiQuery({ name: 'markets', required: false, description: 'comma-separated lowercase markets' })
  @ApiQuery({ name: 'providers', required: false, description: 'comma-separated provider ids (UUIDs)' })
  @ApiQuery({ name: 'sides', required: false, description: 'comma-separated sides: buy, sell, long, short, close' })
  @ApiQuery({ name: 'min_confidence', required: false, description: 'integer 0 to 100' })
  @ApiQuery({ name: 'premium', required: false, enum: ['true', 'false'], description: 'premium signals only, or regular ones only' })
  async list(
    @CurrentPrincipal() principal: Principal,
    @Query() rawQuery: Record<string, unknown>,
  ): Promise<{ data: SignalView[]; next_after_seq: number; has_more: boolean; latest_seq: number }> {
    const query: ListSignalsQuery = this.listQueryPipe.transform(rawQuery);
    const { after_seq: _after, limit: _limit, symbol, ...filterParams } = query;
    const params = new URLSearchParams(Object.entries(filterParams).filter((entry): entry is [string, string] => entry[1] !== undefined));
    if (symbol) params.set('symbols', [symbol, ...(params.get('symbols')?.split(',') ?? [])].join(','));
    const { filter, error } = filterFromQuery(params);
    if (error) throw validationError([error]);
    const tier = await this.tiers.get(principal.userId);
    if (!tier) throw new AppError('unauthorized', 'The user behind this token no longer exists');
    // Read before the page, so it never claims more than the page could show: a client starting
    // from nothing takes it as its position (as a socket takes the welcome's `latest_seq`).
    const latestSeq = await this.signals.latestStoredSeq();
    const events = await this.signals.list(tier, {
      afterSeq: query.after_seq,
      limit: query.limit + 1,
      filter,
    });
    const hasMore = events.length > query.limit;
    const page = (hasMore ? events.slice(0, query.limit) : events).map((event) => event.signal);
    return { data: page, next_after_seq: page.at(-1)?.seq ?? query.after_seq, has_more: hasMore, latest_seq: latestSeq };
  }
}
