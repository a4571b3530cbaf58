/**
 * Chaos suite (`npm run test:chaos`): failure scenarios against real RabbitMQ
 * and PostgreSQL, workers, coordinators, the broker and the database killed
 * or restarted mid-task. Each test/chaos/*.chaos-spec.ts that restarts a
 * server starts its own throw-away one (test/support/chaos-services.ts): the
 * machine's shared servers are never stopped. Run in band: the scenarios
 * time rounds and leases, and the machine has two cores.
 */
const unit = require('../jest.config.js');

module.exports = {
  ...unit,
  rootDir: '..',
  roots: ['<rootDir>/test/chaos'],
  testRegex: '.*\\.chaos-spec\\.ts$',
  testTimeout: 180000,
  maxWorkers: 1,
};
