/**
 * e2e and integration suites: real RabbitMQ and PostgreSQL (see .ci/run).
 * *.e2e-spec.ts under test/ start the compiled apps as separate processes
 * (run `npm run build` first; `npm run test:e2e` does). *.int-spec.ts beside
 * the libraries test one component against the real service.
 */
const { pathsToModuleNameMapper } = require('ts-jest');
const { compilerOptions } = require('../tsconfig.json');

module.exports = {
  rootDir: '..',
  roots: ['<rootDir>/test', '<rootDir>/libs', '<rootDir>/apps'],
  testRegex: '.*\\.(e2e|int)-spec\\.ts$',
  moduleFileExtensions: ['ts', 'js', 'json'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  moduleNameMapper: pathsToModuleNameMapper(compilerOptions.paths, { prefix: '<rootDir>/' }),
  testEnvironment: '<rootDir>/libs/models/test/ort-environment.js',
  setupFiles: ['reflect-metadata'],
  testTimeout: 120000,
};
