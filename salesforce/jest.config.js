// sfdx-lwc-jest's own configuration (lightning-* stubs, @salesforce/* modules), nothing added
// but the folders Jest must never crawl.
const { jestConfig } = require('@salesforce/sfdx-lwc-jest/config');

module.exports = {
    ...jestConfig,
    modulePathIgnorePatterns: ['<rootDir>/toolchain/', '<rootDir>/.localdevserver/']
};
