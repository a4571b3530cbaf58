import { Module } from '@nestjs/common';
import { UseCaseStore } from './use-case-store';
import { UseCasesController } from './use-cases.controller';

@Module({ controllers: [UseCasesController], providers: [UseCaseStore] })
export class UseCasesModule {}
