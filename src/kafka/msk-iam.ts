import { FfError, errorMessage } from '../errors.js';

/** What the signer returns: a base64url presigned kafka-cluster:Connect request and when it expires. */
export interface MskAuthToken {
  token: string;
  expiryTime: number;
}

/** aws-msk-iam-sasl-signer-js's generateAuthToken: signs with the AWS default credential chain. */
export type MskTokenSigner = (options: { region: string }) => Promise<MskAuthToken>;

/**
 * The signer AWS maintains for Node.js (aws-msk-iam-sasl-signer-js), loaded on first use: it
 * brings the STS client and credential providers, which a process without MSK IAM never needs.
 */
const awsSigner: MskTokenSigner = async (options) => {
  const { generateAuthToken } = await import('aws-msk-iam-sasl-signer-js');
  return generateAuthToken(options);
};

/**
 * kafkajs's `oauthBearerProvider` for MSK IAM, the way AWS documents it for kafkajs: the broker
 * takes a SASL/OAUTHBEARER token that is a SigV4-presigned request. kafkajs asks again on every
 * new connection and re-authentication, so each token is fresh (they last 15 minutes) and
 * rotated credentials (instance roles, IRSA, SSO) are picked up without a restart.
 */
export function mskIamTokenProvider(region: string, sign: MskTokenSigner = awsSigner): () => Promise<{ value: string }> {
  return async () => {
    try {
      const { token } = await sign({ region });
      return { value: token };
    } catch (error) {
      // The signer's errors name the credential source that failed, never a secret.
      throw new FfError('SOURCE_UNAVAILABLE', `cannot sign an MSK IAM token for region ${region} (AWS default credential chain): ${errorMessage(error)}`, { cause: error });
    }
  };
}
