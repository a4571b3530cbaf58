/**
 * e2e and integration suites: real RabbitMQ and PostgreSQL (see .ci/run).
 * *.e2e-spec.ts under test/ start the compiled apps as separate processes
 * (run `npm run build` first; `npm run test:e2e` does). *.int-spec.ts beside
 * the libraries test one component against the real service. Everything
 * else (transform, path aliases, environment) is the unit configuration's.
 */
const unit = require('../jest.config.js');

module.exports = {
  ...unit,
  rootDir: '..',
  roots: ['<rootDir>/test', '<rootDir>/libs', '<rootDir>/apps'],
  testRegex: '.*\\.(e2e|int)-spec\\.ts$',
  testTimeout: 120000,
};
