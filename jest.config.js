/** Unit tests: next to the code, no services needed. */
const { pathsToModuleNameMapper } = require('ts-jest');
const { compilerOptions } = require('./tsconfig.json');

module.exports = {
  rootDir: '.',
  roots: ['<rootDir>/apps', '<rootDir>/libs', '<rootDir>/test/deploy', '<rootDir>/test/support', '<rootDir>/bench/support'],
  testRegex: '.*\\.spec\\.ts$',
  moduleFileExtensions: ['ts', 'js', 'json'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  moduleNameMapper: pathsToModuleNameMapper(compilerOptions.paths, { prefix: '<rootDir>/' }),
  // onnxruntime-node checks tensors with the main context's typed-array classes
  testEnvironment: '<rootDir>/libs/models/test/ort-environment.js',
  setupFiles: ['reflect-metadata'],
};
