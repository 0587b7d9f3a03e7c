import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { ApiZodBody } from '../common/openapi.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { JwtAuthGuard, Roles, RolesGuard } from './auth.guards.js';
import {
  createUserSchema,
  encodeUserCursor,
  listUsersQuerySchema,
  updateUserSchema,
  USERS_PAGE_DEFAULT,
  USERS_PAGE_MAX,
  uuidSchema,
  type CreateUserInput,
  type ListUsersQuery,
  type UpdateUserInput,
} from './auth.dto.js';
import { toApiKeyView, toUserView, UsersService, type ApiKeyView, type UserView } from './users.service.js';

/** Path ids are validated as the field `id`, so a bad one is reported under that name. */
const idPipe = new ZodValidationPipe(uuidSchema, 'id');
const listUsersQueryPipe = new ZodValidationPipe(listUsersQuerySchema);

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
  async createUser(@Body(new ZodValidationPipe(createUserSchema)) body: CreateUserInput): Promise<UserView> {
    return toUserView(await this.users.create(body));
  }

  @Get('users')
  @ApiOperation({ summary: 'Users ordered by email (then id), a page at a time; follow next_cursor until it is null' })
  @ApiQuery({
    name: 'email',
    required: false,
    description: 'case-insensitive substring of the email, matched literally (% and _ are not wildcards)',
  })
  @ApiQuery({ name: 'cursor', required: false, description: 'the next_cursor of the previous page (opaque)' })
  @ApiQuery({
    name: 'limit',
    required: false,
    description: `page size, 1 to ${USERS_PAGE_MAX} (decimal digits); default ${USERS_PAGE_DEFAULT}`,
  })
  async listUsers(@Query(listUsersQueryPipe) query: ListUsersQuery): Promise<{ data: UserView[]; next_cursor: string | null }> {
    const page = await this.users.list(query);
    return { data: page.users.map(toUserView), next_cursor: page.next ? encodeUserCursor(page.next) : null };
  }

  @Get('users/:id')
  @ApiOperation({ summary: 'Read a user' })
  async getUser(@Param('id', idPipe) id: string): Promise<UserView> {
    return toUserView(await this.users.get(id));
  }

  @Patch('users/:id')
  @ApiOperation({ summary: "Change a user's tier or role; takes effect on open sockets at once" })
  @ApiZodBody(updateUserSchema)
  async updateUser(
    @Param('id', idPipe) id: string,
    @Body(new ZodValidationPipe(updateUserSchema)) body: UpdateUserInput,
  ): Promise<UserView> {
    return toUserView(await this.users.update(id, body));
  }

  @Post('users/:id/api-keys')
  @ApiOperation({ summary: 'Create an API key for a provider; the key is shown only in this response' })
  async createApiKey(@Param('id', idPipe) id: string): Promise<{ id: string; key: string; prefix: string; created_at: string }> {
    const created = await this.users.createApiKey(id);
    return { id: created.id, key: created.key, prefix: created.prefix, created_at: created.createdAt.toISOString() };
  }

  @Get('users/:id/api-keys')
  @ApiOperation({ summary: "A user's API keys, revoked ones included, newest first; never the key or its hash" })
  async listApiKeys(@Param('id', idPipe) id: string): Promise<{ data: ApiKeyView[] }> {
    return { data: (await this.users.listApiKeys(id)).map(toApiKeyView) };
  }

  @Delete('api-keys/:id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke an API key, effective immediately' })
  async revokeApiKey(@Param('id', idPipe) id: string): Promise<void> {
    await this.users.revokeApiKey(id);
  }
}
