import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiErrors, ApiZodBody, ApiZodQuery, ApiZodResponse } from '../common/openapi.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { CurrentPrincipal, JwtAuthGuard, Roles, RolesGuard } from './auth.guards.js';
import type { Principal } from './principal.js';
import {
  apiKeysSchema,
  createdApiKeySchema,
  createUserSchema,
  encodeUserCursor,
  listUsersQuerySchema,
  updateUserSchema,
  usersPageSchema,
  userViewSchema,
  uuidSchema,
  type ApiKeyView,
  type CreatedApiKey,
  type CreateUserInput,
  type ListUsersQuery,
  type UpdateUserInput,
  type UsersPage,
  type UserView,
} from './auth.dto.js';
import { toApiKeyView, toUserView, UsersService } from './users.service.js';

/** Path ids are validated as the field `id`, so a bad one is reported under that name. */
const idPipe = new ZodValidationPipe(uuidSchema, 'id');
const listUsersQueryPipe = new ZodValidationPipe(listUsersQuerySchema);

/**
 * What every admin request can meet before its handler: no valid token or a user who no longer
 * exists (401), a user who is not an admin (403), a database that does not answer (503).
 */
const ADMIN_ERRORS = ['unauthorized', 'forbidden', 'database_unavailable'] as const;
/** A path id that is not a UUID, or names nothing. */
const ID_ERRORS = ['validation_failed', 'not_found'] as const;

@ApiTags('admin')
@ApiBearerAuth()
@Controller('api/v1/admin')
@UseGuards(JwtAuthGuard, RolesGuard)
@Roles('admin')
export class AdminController {
  constructor(private readonly users: UsersService) {}

  @Post('users')
  @ApiOperation({ summary: 'Create a user (subscriber, provider or admin)' })
  @ApiZodBody(createUserSchema)
  @ApiZodResponse(201, 'The user', userViewSchema)
  @ApiErrors(...ADMIN_ERRORS, 'validation_failed', 'conflict')
  async createUser(@Body(new ZodValidationPipe(createUserSchema)) body: CreateUserInput): Promise<UserView> {
    return toUserView(await this.users.create(body));
  }

  @Get('users')
  @ApiOperation({ summary: 'Users ordered by email (then id), a page at a time; follow next_cursor until it is null' })
  @ApiZodQuery(listUsersQuerySchema)
  @ApiZodResponse(200, 'A page of users', usersPageSchema)
  @ApiErrors(...ADMIN_ERRORS, 'validation_failed')
  async listUsers(@Query(listUsersQueryPipe) query: ListUsersQuery): Promise<UsersPage> {
    const page = await this.users.list(query);
    return { data: page.users.map(toUserView), next_cursor: page.next ? encodeUserCursor(page.next) : null };
  }

  @Get('users/:id')
  @ApiOperation({ summary: 'Read a user' })
  @ApiZodResponse(200, 'The user', userViewSchema)
  @ApiErrors(...ADMIN_ERRORS, ...ID_ERRORS)
  async getUser(@Param('id', idPipe) id: string): Promise<UserView> {
    return toUserView(await this.users.get(id));
  }

  @Patch('users/:id')
  @ApiOperation({ summary: "Change a user's tier or role; takes effect on open sockets at once" })
  @ApiZodBody(updateUserSchema)
  @ApiZodResponse(200, 'The user, changed', userViewSchema)
  @ApiErrors(...ADMIN_ERRORS, ...ID_ERRORS, 'bus_unavailable')
  async updateUser(
    @Param('id', idPipe) id: string,
    @Body(new ZodValidationPipe(updateUserSchema)) body: UpdateUserInput,
    @CurrentPrincipal() admin: Principal,
  ): Promise<UserView> {
    return toUserView(await this.users.update(id, body, admin.userId));
  }

  @Post('users/:id/api-keys')
  @ApiOperation({ summary: 'Create an API key for a provider; the key is shown only in this response' })
  @ApiZodResponse(201, 'The key, shown this once', createdApiKeySchema)
  @ApiErrors(...ADMIN_ERRORS, ...ID_ERRORS, 'conflict')
  async createApiKey(@Param('id', idPipe) id: string): Promise<CreatedApiKey> {
    const created = await this.users.createApiKey(id);
    return { id: created.id, key: created.key, prefix: created.prefix, created_at: created.createdAt.toISOString() };
  }

  @Get('users/:id/api-keys')
  @ApiOperation({ summary: "A user's API keys, revoked ones included, newest first; never the key or its hash" })
  @ApiZodResponse(200, "The user's keys", apiKeysSchema)
  @ApiErrors(...ADMIN_ERRORS, ...ID_ERRORS)
  async listApiKeys(@Param('id', idPipe) id: string): Promise<{ data: ApiKeyView[] }> {
    return { data: (await this.users.listApiKeys(id)).map(toApiKeyView) };
  }

  @Delete('api-keys/:id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke an API key, effective immediately' })
  @ApiZodResponse(204, 'Revoked on every instance')
  @ApiErrors(...ADMIN_ERRORS, ...ID_ERRORS, 'bus_unavailable')
  async revokeApiKey(@Param('id', idPipe) id: string): Promise<void> {
    await this.users.revokeApiKey(id);
  }
}
