import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiZodBody } from '../common/openapi.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { JwtAuthGuard, Roles, RolesGuard } from './auth.guards.js';
import {
  createUserSchema,
  updateUserSchema,
  uuidSchema,
  type CreateUserInput,
  type UpdateUserInput,
} from './auth.dto.js';
import { toUserView, UsersService, type UserView } from './users.service.js';

/** Path ids are validated as the field `id`, so a bad one is reported under that name. */
const idPipe = new ZodValidationPipe(uuidSchema, 'id');

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
  async createApiKey(
    @Param('id', idPipe) id: string,
  ): Promise<{ id: string; key: string; prefix: string; created_at: string }> {
    const created = await this.users.createApiKey(id);
    return { id: created.id, key: created.key, prefix: created.prefix, created_at: created.createdAt.toISOString() };
  }

  @Delete('api-keys/:id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke an API key, effective immediately' })
  async revokeApiKey(@Param('id', idPipe) id: string): Promise<void> {
    await this.users.revokeApiKey(id);
  }
}
