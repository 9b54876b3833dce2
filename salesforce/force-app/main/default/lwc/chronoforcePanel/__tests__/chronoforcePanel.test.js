// Every state of the Chronopost panel and every action's call, success and refusal rendering.
import { createElement } from 'lwc';
import ChronoforcePanel from 'c/chronoforcePanel';
import getPanel from '@salesforce/apex/ChronoforceAgentController.getPanel';
import rates from '@salesforce/apex/ChronoforceAgentController.rates';
import chooseProduct from '@salesforce/apex/ChronoforceAgentController.chooseProduct';
import relayPoints from '@salesforce/apex/ChronoforceAgentController.relayPoints';
import chooseRelayPoint from '@salesforce/apex/ChronoforceAgentController.chooseRelayPoint';
import createLabel from '@salesforce/apex/ChronoforceAgentController.createLabel';
import reprintLabel from '@salesforce/apex/ChronoforceAgentController.reprintLabel';
import returnLabel from '@salesforce/apex/ChronoforceAgentController.returnLabel';
import bookPickup from '@salesforce/apex/ChronoforceAgentController.bookPickup';
import cancelLabel from '@salesforce/apex/ChronoforceAgentController.cancelLabel';
import addressReview from '@salesforce/apex/ChronoforceAgentController.addressReview';
import fixAddress from '@salesforce/apex/ChronoforceAgentController.fixAddress';
import { refreshApex } from '@salesforce/apex';

jest.mock(
    '@salesforce/apex/ChronoforceAgentController.getPanel',
    () => {
        const { createApexTestWireAdapter } = require('@salesforce/sfdx-lwc-jest');
        return { default: createApexTestWireAdapter(jest.fn()) };
    },
    { virtual: true }
);
// One mock per imperative Apex method (jest.mock calls must be literal to be hoisted).
jest.mock('@salesforce/apex/ChronoforceAgentController.rates', () => ({ default: jest.fn() }), { virtual: true });
jest.mock('@salesforce/apex/ChronoforceAgentController.chooseProduct', () => ({ default: jest.fn() }), { virtual: true });
jest.mock('@salesforce/apex/ChronoforceAgentController.relayPoints', () => ({ default: jest.fn() }), { virtual: true });
jest.mock('@salesforce/apex/ChronoforceAgentController.chooseRelayPoint', () => ({ default: jest.fn() }), { virtual: true });
jest.mock('@salesforce/apex/ChronoforceAgentController.createLabel', () => ({ default: jest.fn() }), { virtual: true });
jest.mock('@salesforce/apex/ChronoforceAgentController.reprintLabel', () => ({ default: jest.fn() }), { virtual: true });
jest.mock('@salesforce/apex/ChronoforceAgentController.returnLabel', () => ({ default: jest.fn() }), { virtual: true });
jest.mock('@salesforce/apex/ChronoforceAgentController.bookPickup', () => ({ default: jest.fn() }), { virtual: true });
jest.mock('@salesforce/apex/ChronoforceAgentController.cancelLabel', () => ({ default: jest.fn() }), { virtual: true });
jest.mock('@salesforce/apex/ChronoforceAgentController.addressReview', () => ({ default: jest.fn() }), { virtual: true });
jest.mock('@salesforce/apex/ChronoforceAgentController.fixAddress', () => ({ default: jest.fn() }), { virtual: true });
jest.mock('@salesforce/apex', () => ({ refreshApex: jest.fn(() => Promise.resolve()) }), { virtual: true });

const ORDER = '801000000000001AAA';
const CASE = '500000000000001AAA';

function panelOf(overrides) {
    return {
        recordId: ORDER,
        objectName: 'Order',
        orderId: ORDER,
        status: null,
        labelStatus: null,
        podStatus: null,
        parcels: [],
        events: [],
        ...overrides
    };
}

const PARCELS = [
    { skybillNumber: 'XY100000001FR', trackingUrl: 'https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT=XY100000001FR' },
    { skybillNumber: 'XY100000002FR', trackingUrl: 'https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT=XY100000002FR' }
];
const EVENTS = [
    { id: 'a01000000000002', code: 'DC', label: 'En cours d\'acheminement', place: 'CHILLY MAZARIN', eventTime: '2026-12-02T10:00:00Z', status: 'in_transit', skybillNumber: 'XY100000001FR' },
    { id: 'a01000000000001', code: 'PC', label: 'Pris en charge', place: 'PARIS', eventTime: '2026-12-01T17:00:00Z', status: 'picked_up', skybillNumber: 'XY100000001FR' }
];
const LABEL_FILE = { documentId: '069000000000001AAA', versionId: '068000000000001AAA', title: 'Chronopost label 00000101' };

function refused(code, message, field) {
    return { body: { message: JSON.stringify({ code, message, field }) } };
}

async function flush() {
    for (let i = 0; i < 5; i++) {
        // eslint-disable-next-line no-await-in-loop
        await Promise.resolve();
    }
}

async function mount(panel, triggerObject) {
    const element = createElement('c-chronoforce-panel', { is: ChronoforcePanel });
    element.recordId = panel.recordId;
    if (triggerObject) {
        element.triggerObject = triggerObject;
    }
    document.body.appendChild(element);
    getPanel.emit(panel);
    await flush();
    return element;
}

const $ = (element, selector) => element.shadowRoot.querySelector(selector);
const $$ = (element, selector) => Array.from(element.shadowRoot.querySelectorAll(selector));
const text = (element, selector) => ($(element, selector) ? $(element, selector).textContent : null);

async function click(element, selector) {
    $(element, selector).click();
    await flush();
}

afterEach(() => {
    while (document.body.firstChild) {
        document.body.removeChild(document.body.firstChild);
    }
    jest.clearAllMocks();
});

describe('states', () => {
    it('no label yet: says so, offers to create it, cancel window not open yet', async () => {
        const element = await mount(panelOf({}));
        expect($(element, '.status').dataset.state).toBe('no_label');
        expect($(element, '.status-badge').label).toBe('No label yet');
        expect(text(element, '.no-label')).toBe('No label yet.');
        expect($(element, '.create-label').disabled).toBe(false);
        expect($(element, '.reprint').disabled).toBe(true);
        expect($(element, '.cancel').disabled).toBe(true);
        expect(text(element, '.cancel-window')).toMatch(/^Not open yet: a label can be cancelled once it is created/);
        expect($(element, '.parcels')).toBeNull();
    });

    it('labeled: badge, parcels with tracking links, label file, cancel open', async () => {
        const element = await mount(
            panelOf({ status: 'label_created', labelStatus: 'Created', parcels: PARCELS, labelFile: LABEL_FILE })
        );
        expect($(element, '.status').dataset.state).toBe('labeled');
        expect($(element, '.status-badge').label).toBe('Label created');
        const links = $$(element, '.parcel a');
        expect(links.map((a) => a.textContent)).toEqual(['XY100000001FR', 'XY100000002FR']);
        expect(links[0].href).toBe(PARCELS[0].trackingUrl);
        expect($(element, '.label-file').textContent).toBe('Chronopost label 00000101');
        expect($(element, '.label-file').getAttribute('href')).toBe('/lightning/r/ContentDocument/069000000000001AAA/view');
        expect($(element, '.create-label').disabled).toBe(true);
        expect($(element, '.reprint').disabled).toBe(false);
        expect($(element, '.cancel').disabled).toBe(false);
        expect(text(element, '.cancel-window')).toBe('Open until Chronopost picks the parcels up.');
    });

    it('in transit: last event, timeline newest first, cancel closed with the reason', async () => {
        const element = await mount(
            panelOf({
                status: 'in_transit',
                parcels: PARCELS,
                events: EVENTS,
                lastEvent: { code: 'DC', label: 'En cours d\'acheminement', place: 'CHILLY MAZARIN', eventTime: '2026-12-02T10:00:00Z' }
            })
        );
        expect($(element, '.status').dataset.state).toBe('in_transit');
        expect($(element, '.status-badge').label).toBe('In transit');
        expect(text(element, '.status-reason')).toBe('En cours d\'acheminement');
        expect(text(element, '.last-event')).toContain('(DC), CHILLY MAZARIN');
        const rows = $$(element, '.timeline-event').map((li) => li.textContent);
        expect(rows).toHaveLength(2);
        expect(rows[0]).toContain('(DC) CHILLY MAZARIN · In transit');
        expect(rows[1]).toContain('(PC) PARIS · Picked up');
        expect($(element, '.cancel').disabled).toBe(true);
        expect(text(element, '.cancel-window')).toBe(
            'Closed: the parcels are past pickup (In transit); Chronopost no longer cancels this label.'
        );
    });

    it('delivered with proof of delivery: the POD link', async () => {
        const element = await mount(
            panelOf({
                status: 'delivered',
                parcels: PARCELS,
                labelFile: LABEL_FILE,
                proofOfDelivery: { documentId: '069000000000009AAA', versionId: '068000000000009AAA', title: 'Chronopost proof of delivery XY100000001FR' }
            })
        );
        expect($(element, '.status').dataset.state).toBe('delivered');
        expect($(element, '.status-badge').label).toBe('Delivered');
        expect($(element, '.pod').getAttribute('href')).toBe('/lightning/r/ContentDocument/069000000000009AAA/view');
    });

    it('delivered without a proof of delivery: no POD link', async () => {
        const element = await mount(panelOf({ status: 'delivered', parcels: PARCELS }));
        expect($(element, '.pod')).toBeNull();
    });

    it('delivered, proof of delivery not there yet: its status instead of a link', async () => {
        const element = await mount(panelOf({ status: 'delivered', parcels: PARCELS, podStatus: 'Pending' }));
        expect($(element, '.pod')).toBeNull();
        expect($(element, '.pod-status').textContent).toBe('Proof of delivery: Pending');
    });

    it('exception: code, message, field and what to do', async () => {
        const element = await mount(
            panelOf({
                status: 'exception',
                openException: { code: 'POSTAL_CODE_CITY_MISMATCH', message: '69001 is LYON, not PARIS', field: 'ShippingPostalCode', operation: 'label.create' }
            })
        );
        expect($(element, '.status').dataset.state).toBe('exception');
        expect($(element, '.exception').dataset.code).toBe('POSTAL_CODE_CITY_MISMATCH');
        expect(text(element, '.exception')).toContain('69001 is LYON, not PARIS');
        expect(text(element, '.exception-field')).toBe('Field: ShippingPostalCode');
        expect(text(element, '.advice')).toMatch(/^The address was held for review/);
        expect(text(element, '.status-reason')).toBe('69001 is LYON, not PARIS');
    });

    it('exception of another kind: its own advice', async () => {
        const element = await mount(
            panelOf({ openException: { code: 'NO_PRODUCT', message: 'no product fits', field: '' } })
        );
        expect(text(element, '.advice')).toMatch(/^No Chronopost product fits this order/);
    });

    it('return: the return tracking number and its label file, on a Case', async () => {
        const element = await mount(
            panelOf({
                recordId: CASE,
                objectName: 'Case',
                caseId: CASE,
                status: 'in_transit',
                parcels: PARCELS,
                returnTrackingNumber: 'XY200000001FR',
                returnLabelFile: { documentId: '069000000000003AAA', versionId: '068000000000003AAA', title: 'Chronopost return label 00000101' }
            })
        );
        expect($(element, '.status').dataset.state).toBe('return');
        expect(text(element, '.return p')).toBe('Return: XY200000001FR');
        expect($(element, '.return-file').textContent).toBe('Chronopost return label 00000101');
    });

    it('a Case without an order: actions that need one are disabled', async () => {
        const element = await mount(panelOf({ recordId: CASE, objectName: 'Case', caseId: CASE, orderId: null }));
        expect($(element, '.rates').disabled).toBe(true);
        expect($(element, '.create-label').disabled).toBe(true);
    });

    it('the panel cannot be read: its refusal, nothing else', async () => {
        const element = createElement('c-chronoforce-panel', { is: ChronoforcePanel });
        element.recordId = ORDER;
        document.body.appendChild(element);
        getPanel.error({ message: 'Insufficient access' });
        await flush();
        expect($(element, '.load-error')).not.toBeNull();
        expect($(element, '.status')).toBeNull();
    });
});

// Each action: the Apex call with its arguments, the success text, the refusal as it came.
async function expectRefusal(element, selector, mock, code, message, field) {
    mock.mockRejectedValue(refused(code, message, field));
    await click(element, selector);
    const box = $(element, '.refusal');
    expect(box).not.toBeNull();
    expect(box.dataset.code).toBe(code);
    expect(text(element, '.refusal-code')).toBe(code);
    expect(text(element, '.refusal-message')).toBe(message);
    if (field) {
        expect(text(element, '.refusal-field')).toBe(` (field ${field})`);
    } else {
        expect($(element, '.refusal-field')).toBeNull();
    }
    expect($(element, '.success')).toBeNull();
}

const RATES = {
    order_id: ORDER,
    products: [
        { product_code: '01', product_name: 'Chrono 13', amount_incl_vat: 14.4, promised_date: '2026-12-04', promised_before: '13:00' },
        { product_code: '16', product_name: 'Chrono 18', amount_incl_vat: 11.88, promised_date: '2026-12-04', promised_before: '18:00' }
    ],
    chosen: { product_code: '16', product_name: 'Chrono 18', rule: 'home-france', reason: "Rule 'home-france' chose Chrono 18 (16)." },
    routing_error: ''
};

describe('rates and products', () => {
    it('lists the products with promised dates and the routing reason, then writes the choice', async () => {
        const element = await mount(panelOf({}));
        rates.mockResolvedValue(RATES);
        await click(element, '.rates');
        expect(rates).toHaveBeenCalledWith({ orderId: ORDER });
        expect(text(element, '.routing-reason')).toBe("Rule 'home-france' chose Chrono 18 (16).");
        const quotes = $$(element, '.quote');
        expect(quotes.map((q) => q.dataset.code)).toEqual(['01', '16']);
        expect(quotes[1].textContent).toContain('2026-12-04 before 18:00');
        expect(quotes[1].dataset.chosen).toBe('true');
        expect(text(element, '.success')).toBe('2 Chronopost product(s) for this order.');

        chooseProduct.mockResolvedValue({ order_id: ORDER, product_code: '01', shipping_cost: 14.4, includes_vat: true });
        $$(element, '.choose-product')[0].click();
        await flush();
        expect(chooseProduct).toHaveBeenCalledWith({ orderId: ORDER, productCode: '01' });
        expect(text(element, '.success')).toBe('Product 01 written to the order, shipping cost 14.4.');
        expect(refreshApex).toHaveBeenCalled();
    });

    it('no product: the routing error is the reason', async () => {
        const element = await mount(panelOf({}));
        rates.mockResolvedValue({ ...RATES, chosen: null, routing_error: 'no product reaches 98000' });
        await click(element, '.rates');
        expect(text(element, '.routing-reason')).toBe('no product reaches 98000');
    });

    it('rates refused', async () => {
        const element = await mount(panelOf({}));
        await expectRefusal(element, '.rates', rates, 'ORDER_NOT_FOUND', 'no Order 801000000000001AAA in Salesforce', '');
    });

    it('choosing a product refused', async () => {
        const element = await mount(panelOf({}));
        rates.mockResolvedValue(RATES);
        await click(element, '.rates');
        chooseProduct.mockRejectedValue(refused('PRODUCT_NOT_OFFERED', 'Chronopost does not offer 02 here', 'product_code'));
        $$(element, '.choose-product')[0].click();
        await flush();
        expect($(element, '.refusal').dataset.code).toBe('PRODUCT_NOT_OFFERED');
        expect(text(element, '.refusal-field')).toBe(' (field product_code)');
    });
});

const POINTS = [
    {
        id: '2001R',
        name: 'TABAC DES MARTYRS',
        address: { line1: '12 RUE DES MARTYRS', line2: '', postal_code: '75009', city: 'PARIS', country: 'FR' },
        opening_hours: ['Mon 09:00-19:00', 'Tue 09:00-19:00'],
        distance_m: 2528
    }
];

describe('relay points', () => {
    it('lists the nearest points with distance and hours, on a map, and writes the choice', async () => {
        const element = await mount(panelOf({}));
        relayPoints.mockResolvedValue(POINTS);
        await click(element, '.relay');
        expect(relayPoints).toHaveBeenCalledWith({ orderId: ORDER });
        const map = $(element, 'lightning-map');
        expect(map.mapMarkers).toEqual([
            {
                location: { Street: '12 RUE DES MARTYRS', PostalCode: '75009', City: 'PARIS', Country: 'FR' },
                title: 'TABAC DES MARTYRS',
                description: 'Mon 09:00-19:00, Tue 09:00-19:00',
                value: '2001R'
            }
        ]);
        expect(text(element, '.point')).toContain('2.5 km');
        expect(text(element, '.point')).toContain('Mon 09:00-19:00 · Tue 09:00-19:00');

        chooseRelayPoint.mockResolvedValue(undefined);
        await click(element, '.choose-point');
        expect(chooseRelayPoint).toHaveBeenCalledWith({ orderId: ORDER, relayPointId: '2001R' });
        expect(text(element, '.success')).toBe('Relay point 2001R written to the order: the label goes there.');
    });

    it('choosing on the map writes the same', async () => {
        const element = await mount(panelOf({}));
        relayPoints.mockResolvedValue(POINTS);
        await click(element, '.relay');
        chooseRelayPoint.mockResolvedValue(undefined);
        $(element, 'lightning-map').dispatchEvent(new CustomEvent('markerselect', { detail: { selectedMarkerValue: '2001R' } }));
        await flush();
        expect(chooseRelayPoint).toHaveBeenCalledWith({ orderId: ORDER, relayPointId: '2001R' });
    });

    it('relay points refused', async () => {
        const element = await mount(panelOf({}));
        await expectRefusal(element, '.relay', relayPoints, 'CHRONOPOST_RELAY', 'Chronopost could not list points', 'postal_code');
    });

    it('choosing a relay point refused', async () => {
        const element = await mount(panelOf({}));
        relayPoints.mockResolvedValue(POINTS);
        await click(element, '.relay');
        await expectRefusal(element, '.choose-point', chooseRelayPoint, 'FIELD_CUSTOM_VALIDATION_EXCEPTION', 'order is locked', 'Chronopost_Relay_Point_Id__c');
    });
});

describe('labels', () => {
    it('create the label now', async () => {
        const element = await mount(panelOf({}));
        createLabel.mockResolvedValue({ order_id: ORDER, shipment_id: 7, created: true, status: 'label_created', skybill_numbers: ['XY100000001FR'] });
        await click(element, '.create-label');
        expect(createLabel).toHaveBeenCalledWith({ orderId: ORDER });
        expect(text(element, '.success')).toBe('Label created: XY100000001FR.');
        expect(refreshApex).toHaveBeenCalled();
    });

    it('create the label when one exists already', async () => {
        const element = await mount(panelOf({}));
        createLabel.mockResolvedValue({ order_id: ORDER, shipment_id: 7, created: false, status: 'label_created', skybill_numbers: ['XY100000001FR'] });
        await click(element, '.create-label');
        expect(text(element, '.success')).toBe('The order already has a label: XY100000001FR.');
    });

    it('create the label refused, with the field', async () => {
        const element = await mount(panelOf({}));
        await expectRefusal(element, '.create-label', createLabel, 'ADDRESS_INVALID', 'postal code missing', 'ShippingPostalCode');
    });

    it('a refusal that is not chronoforce JSON is shown as it came', async () => {
        const element = await mount(panelOf({}));
        createLabel.mockRejectedValue({ body: { message: 'Unable to connect' } });
        await click(element, '.create-label');
        expect(text(element, '.refusal-code')).toBe('ERROR');
        expect(text(element, '.refusal-message')).toBe('Unable to connect');
    });

    it('re-print opens each stored label', async () => {
        const element = await mount(panelOf({ status: 'label_created', parcels: PARCELS }));
        const opened = jest.spyOn(window, 'open').mockImplementation(() => null);
        URL.createObjectURL = jest.fn(() => 'blob:label');
        reprintLabel.mockResolvedValue({
            order_id: ORDER,
            shipment_id: 7,
            labels: [{ skybill_number: 'XY100000001FR', label_format: 'PDF', file_name: 'chronopost-XY100000001FR.pdf', content_base64: btoa('%PDF-1.4') }]
        });
        await click(element, '.reprint');
        expect(reprintLabel).toHaveBeenCalledWith({ orderId: ORDER });
        expect(opened).toHaveBeenCalledWith('blob:label', '_blank');
        expect(text(element, '.success')).toBe('1 label(s) opened for printing.');
        opened.mockRestore();
    });

    it('re-print refused', async () => {
        const element = await mount(panelOf({ status: 'label_created', parcels: PARCELS }));
        await expectRefusal(element, '.reprint', reprintLabel, 'NO_LABEL_STORED', 'no live label to re-print', '');
    });
});

describe('returns', () => {
    const MADE = { order_id: ORDER, case_id: CASE, shipment_id: 9, skybill_numbers: ['XY200000001FR'], returns_reference: 'R-101', status: 'label_created', created: true };

    it('from a Case: the Case id, and how the label reaches the customer', async () => {
        const element = await mount(panelOf({ recordId: CASE, objectName: 'Case', caseId: CASE }));
        returnLabel.mockResolvedValue(MADE);
        await click(element, '.return-label');
        expect(returnLabel).toHaveBeenCalledWith({ recordId: CASE });
        expect(text(element, '.success')).toContain('Return label XY200000001FR (reference R-101).');
        expect(text(element, '.success')).toContain('send it to the customer from the Case');
    });

    it('from an Order: the Order id', async () => {
        const element = await mount(panelOf({}));
        returnLabel.mockResolvedValue(MADE);
        await click(element, '.return-label');
        expect(returnLabel).toHaveBeenCalledWith({ recordId: ORDER });
    });

    it('return label refused', async () => {
        const element = await mount(panelOf({ recordId: CASE, objectName: 'Case', caseId: CASE }));
        await expectRefusal(element, '.return-label', returnLabel, 'CASE_TYPE', "Case is of type 'Question', not 'Return'", 'Type');
    });
});

describe('pickup', () => {
    async function fillPickup(element) {
        await click(element, '.pickup');
        const set = (name, value) => {
            $(element, `lightning-input[data-name="${name}"]`).value = value;
        };
        set('date', '2026-12-07');
        set('ready', '09:00');
        set('closing', '18:00');
        set('instructions', 'Gate B');
    }

    it('books a pickup with the form values', async () => {
        const element = await mount(panelOf({ status: 'label_created', parcels: PARCELS }));
        await fillPickup(element);
        bookPickup.mockResolvedValue({ order_id: ORDER, shipment_id: 7, pickup_number: 'P123', pickup_date: '2026-12-07T09:00:00Z', skybill_numbers: ['XY100000001FR', 'XY100000002FR'], relabeled: false });
        await click(element, '.pickup-submit');
        expect(bookPickup).toHaveBeenCalledWith({ orderId: ORDER, pickupDate: '2026-12-07', readyTime: '09:00', closingTime: '18:00', instructions: 'Gate B' });
        expect(text(element, '.success')).toBe('Pickup P123 booked for 2 parcel(s).');
        expect($(element, '.pickup-form')).toBeNull();
    });

    it('pickup refused', async () => {
        const element = await mount(panelOf({ status: 'label_created', parcels: PARCELS }));
        await fillPickup(element);
        await expectRefusal(element, '.pickup-submit', bookPickup, 'INVALID_INPUT', 'closing_time must be after ready_time', 'closing_time');
    });
});

describe('cancel', () => {
    it('cancels the label while the window is open', async () => {
        const element = await mount(panelOf({ status: 'label_created', parcels: PARCELS }));
        cancelLabel.mockResolvedValue({ shipment_id: 7, cancelled: ['XY100000001FR', 'XY100000002FR'], status: 'cancelled' });
        await click(element, '.cancel');
        expect(cancelLabel).toHaveBeenCalledWith({ orderId: ORDER, intent: 'outbound' });
        expect(text(element, '.success')).toBe('Cancelled: XY100000001FR, XY100000002FR.');
    });

    it('cancel refused by Chronopost', async () => {
        const element = await mount(panelOf({ status: 'label_created', parcels: PARCELS }));
        await expectRefusal(element, '.cancel', cancelLabel, 'ALREADY_PICKED_UP', 'shipment 7 is past pickup (status in_transit): it cannot be cancelled', '');
    });

    it('already cancelled: closed, and says so', async () => {
        const element = await mount(panelOf({ status: 'cancelled', parcels: PARCELS }));
        expect($(element, '.cancel').disabled).toBe(true);
        expect(text(element, '.cancel-window')).toBe('This label is already cancelled.');
    });
});

describe('address review', () => {
    const HELD = panelOf({ status: 'exception', openException: { code: 'POSTAL_CODE_CITY_MISMATCH', message: '69001 is LYON', field: 'ShippingPostalCode' } });
    const REVIEW = {
        order_id: ORDER,
        exception_id: 4,
        code: 'POSTAL_CODE_CITY_MISMATCH',
        message: '69001 is LYON; PARIS is 75001–75020, 75116',
        field: 'ShippingPostalCode',
        fields: [
            { label: 'Street', sf_field: 'ShippingStreet', value: '1 RUE DE RIVOLI' },
            { label: 'Postal code', sf_field: 'ShippingPostalCode', value: '69001' },
            { label: 'City', sf_field: 'ShippingCity', value: 'PARIS' }
        ],
        candidates: [
            { postal_code: '75001', city: 'PARIS' },
            { postal_code: '69001', city: 'LYON' }
        ]
    };

    it('shows the candidates, takes one, and writes the fix', async () => {
        const element = await mount(HELD);
        addressReview.mockResolvedValue(REVIEW);
        await click(element, '.review');
        expect(addressReview).toHaveBeenCalledWith({ orderId: ORDER });
        expect(text(element, '.review-message')).toBe('69001 is LYON; PARIS is 75001–75020, 75116');
        expect($$(element, '.candidate').map((b) => b.label)).toEqual(['75001', '69001']);
        expect($$(element, '.fix-input').map((i) => i.value)).toEqual(['1 RUE DE RIVOLI', '69001', 'PARIS']);

        await click(element, '.candidate');
        expect($$(element, '.fix-input').map((i) => i.value)).toEqual(['1 RUE DE RIVOLI', '75001', 'PARIS']);

        const street = $$(element, '.fix-input')[0];
        street.value = '2 RUE DE RIVOLI';
        street.dispatchEvent(new CustomEvent('change'));
        fixAddress.mockResolvedValue({ order_id: ORDER, shipment_id: 7, fields: ['ShippingPostalCode', 'ShippingStreet'] });
        await click(element, '.fix-submit');
        expect(fixAddress).toHaveBeenCalledWith({
            orderId: ORDER,
            values: { ShippingStreet: '2 RUE DE RIVOLI', ShippingPostalCode: '75001', ShippingCity: 'PARIS' }
        });
        expect(text(element, '.success')).toBe(
            'Address corrected in Salesforce (ShippingPostalCode, ShippingStreet); the label is retried.'
        );
        expect($(element, '.review-form')).toBeNull();
    });

    it('no address held: the refusal', async () => {
        const element = await mount(HELD);
        await expectRefusal(element, '.review', addressReview, 'NO_ADDRESS_REVIEW', 'order has no address held for review', '');
    });

    it('the fix still refused: the refusal, the form kept', async () => {
        const element = await mount(HELD);
        addressReview.mockResolvedValue(REVIEW);
        await click(element, '.review');
        fixAddress.mockRejectedValue(refused('ADDRESS_REFUSED', 'the address is still refused (field ShippingPostalCode)', 'ShippingPostalCode'));
        await click(element, '.fix-submit');
        expect(text(element, '.refusal-code')).toBe('ADDRESS_REFUSED');
        expect(text(element, '.refusal-field')).toBe(' (field ShippingPostalCode)');
        expect($(element, '.review-form')).not.toBeNull();
    });
});

describe('orgs that ship Shipments (triggerObject = Shipment)', () => {
    const SHIPMENT = '0OB000000000001AAA';

    it('on a Shipment page, the actions name the Shipment', async () => {
        const element = await mount(
            panelOf({ recordId: SHIPMENT, objectName: 'Shipment', shipmentId: SHIPMENT }),
            'Shipment'
        );
        createLabel.mockResolvedValue({ order_id: SHIPMENT, shipment_id: 3, created: true, status: 'label_created', skybill_numbers: ['XY3FR'] });
        await click(element, '.create-label');
        expect(createLabel).toHaveBeenCalledWith({ orderId: SHIPMENT });
        expect($(element, '.no-order')).toBeNull();
    });

    it('on an Order page without a linked Shipment, the actions are off and say why', async () => {
        const element = await mount(panelOf({}), 'Shipment');
        expect($(element, '.create-label').disabled).toBe(true);
        expect($(element, '.rates').disabled).toBe(true);
        expect(text(element, '.no-order')).toBe('No Shipment is linked to this record: chronoforce ships Shipments here.');
    });

    it('a Case names its Shipment', async () => {
        const element = await mount(
            panelOf({ recordId: CASE, objectName: 'Case', caseId: CASE, shipmentId: SHIPMENT }),
            'Shipment'
        );
        rates.mockResolvedValue(RATES);
        await click(element, '.rates');
        expect(rates).toHaveBeenCalledWith({ orderId: SHIPMENT });
    });
});
